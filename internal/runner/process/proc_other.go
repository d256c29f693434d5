//go:build unix && !linux

package process

import "errors"

// startTime would return a process's start time; without /proc it does
// not know it, so no program is ever recovered.
func startTime(pid int) (uint64, error) {
	return 0, errors.New("process start times are known only on Linux (/proc)")
}

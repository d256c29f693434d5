package process

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// startTime returns the start time of a process (field 22 of
// /proc/PID/stat, in clock ticks after boot), and an error for a process
// that does not exist or has exited (a zombie).
func startTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := bytes.Fields(data[i+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name, want at least 20", pid, len(fields))
	}
	if s := string(fields[0]); s == "Z" || s == "X" || s == "x" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
}

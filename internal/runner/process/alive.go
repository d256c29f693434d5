//go:build unix

package process

// alive reports whether the process pid runs and is the one that started
// at start (not another that reuses its ID).
func alive(pid int, start uint64) bool {
	t, err := startTime(pid)
	return err == nil && t == start
}

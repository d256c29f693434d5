//go:build unix

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive lock on the data directory, so that two
// agents never share one (each would adopt, or report lost, the other's
// programs). The lock ends with the returned function, or the process.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, "agent.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another agent uses the data directory %s: give each agent a directory of its own (--data-dir)", dir)
		}
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	return func() {
		// A flock belongs to the open file, and a child forked from this
		// process holds a copy of every descriptor until it execs (the
		// O_CLOEXEC ones close then): closing ours while a program is
		// being started would leave the directory locked for a moment,
		// and an agent started again at once would be refused. Close
		// under ForkLock: forks hold it for writing, and on Linux (vfork)
		// until the child has exec'd.
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		f.Close()
	}, nil
}

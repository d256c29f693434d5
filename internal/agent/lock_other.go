//go:build !unix

package agent

// lockDir does not lock on this system.
func lockDir(dir string) (func(), error) { return func() {}, nil }

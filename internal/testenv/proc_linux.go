package testenv

import "syscall"

// sys returns the attributes of a cluster process: run as u, and sent
// SIGQUIT (PostgreSQL's immediate shutdown) when the test process dies.
func (u runAsUser) sys() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT}
	if u.uid >= 0 {
		a.Credential = &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), NoSetGroups: true}
	}
	return a
}

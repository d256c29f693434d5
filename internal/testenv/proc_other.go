//go:build unix && !linux

package testenv

import "syscall"

// sys returns the attributes of a cluster process: run as u. Outside Linux
// there is no parent-death signal: the cluster of a killed test process
// keeps running until it is stopped by hand (pg_ctl -D DIR/data stop).
func (u runAsUser) sys() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	if u.uid >= 0 {
		a.Credential = &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), NoSetGroups: true}
	}
	return a
}

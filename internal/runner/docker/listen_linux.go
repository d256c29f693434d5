package docker

import (
	"context"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenRelay opens the listener of a relay with SO_REUSEPORT, so that the
// relays of several agents on the machine share the address (each keeps it
// working when another exits), while a listener without SO_REUSEPORT (the
// server itself) holding it makes it fail with EADDRINUSE.
func listenRelay(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(ctx, "tcp", addr)
}

// addrInUse reports whether a listen failed because another socket holds
// the address.
func addrInUse(err error) bool { return errors.Is(err, unix.EADDRINUSE) }

//go:build !linux

package docker

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// listenRelay opens the listener of a relay. Only Linux shares the address
// between the relays of several agents (SO_REUSEPORT): elsewhere the second
// agent finds the address in use and uses it as the server's.
func listenRelay(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

// addrInUse reports whether a listen failed because another socket holds
// the address.
func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

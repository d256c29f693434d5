package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// apiAddress is the server address a container gets.
type apiAddress struct {
	url  string // REEVE_API_URL
	note string // what to tell the run's reader, or ""
	// relay is "LISTEN>TARGET" when the runner relays the address, or "".
	relay string
}

// apiURL returns the server address of a container, for the server URL
// specURL of the claim.
func (r *Runner) apiURL(ctx context.Context, specURL string) (apiAddress, error) {
	if r.cfg.APIURL != "" {
		return apiAddress{url: r.cfg.APIURL}, nil
	}
	switch network := r.cfg.Network; {
	case network == "host", network == "none", strings.HasPrefix(network, "container:"):
		return apiAddress{url: specURL}, nil // the host's loopback, or no network at all
	}
	u, err := url.Parse(specURL)
	if err != nil || u.Host == "" {
		return apiAddress{url: specURL}, nil // not ours to judge: the program reports it
	}
	if !isLoopback(u.Hostname()) {
		return apiAddress{url: specURL}, nil
	}
	if u.Scheme == "https" {
		// The gateway's address would not match the server's certificate.
		// A container would start only to fail at its first call: say it now.
		return apiAddress{}, fmt.Errorf("the server address %s is loopback, which a container cannot reach, and it is https, so the agent cannot give the container another address for it (the server's certificate would not match): give the agent --api-url with an https address containers reach that the certificate names, or --network host", specURL)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	network := r.cfg.Network
	if network == "" {
		network = "bridge"
	}
	gw, err := r.gateway(ctx, network)
	if err != nil {
		return apiAddress{}, err
	}
	addr := net.JoinHostPort(gw, port)
	target := net.JoinHostPort(u.Hostname(), port)
	relayed, err := r.ensureRelay(ctx, addr, target)
	if err != nil {
		return apiAddress{}, fmt.Errorf("the server address %s is loopback, which a container cannot reach, and the agent cannot relay %s to it: %v: give the agent --api-url with an address containers reach (e.g. the machine's IP address, or http://host.docker.internal:%s with Docker Desktop)", specURL, addr, err, port)
	}
	rewritten := *u
	rewritten.Host = addr
	a := apiAddress{url: rewritten.String()}
	how := fmt.Sprintf("the gateway of Docker network %q, where the server listens too", network)
	if relayed {
		how = fmt.Sprintf("the gateway of Docker network %q, relayed by the agent to %s", network, target)
		a.relay = addr + ">" + target
	}
	a.note = fmt.Sprintf("the server address %s is loopback, which a container cannot reach: the container calls %s instead (%s); give the agent --api-url to choose the address", specURL, a.url, how)
	return a, nil
}

// resumeRelay starts the relay a recovered container's label names again,
// so that its server address keeps working after the agent restarted.
func (r *Runner) resumeRelay(ctx context.Context, label string) {
	addr, target, ok := strings.Cut(label, ">")
	if !ok || addr == "" || target == "" {
		return
	}
	if host, _, err := net.SplitHostPort(target); err != nil || !isLoopback(strings.Trim(host, "[]")) {
		return // only ever relay to the machine itself
	}
	if _, err := r.ensureRelay(ctx, addr, target); err != nil {
		r.log.WarnContext(ctx, "could not relay the server's address to a recovered container", "listen", addr, "target", target, "err", err)
	}
}

// isLoopback reports whether host names the machine itself.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// gateway returns the gateway of a Docker network: the agent machine's
// address on it. The engine reports it in the network's IPAM configuration,
// except often for the default bridge: then it is the address of the
// network's bridge interface (docker0), or else the first address of its
// subnet, which Docker gives the gateway.
func (r *Runner) gateway(ctx context.Context, network string) (string, error) {
	res, err := r.cl.NetworkInspect(ctx, network, client.NetworkInspectOptions{})
	if err != nil {
		return "", r.engineError(fmt.Sprintf("inspect the Docker network %q", network), err)
	}
	n := res.Network
	for _, c := range n.IPAM.Config {
		if c.Gateway.IsValid() && c.Gateway.Is4() {
			return c.Gateway.String(), nil
		}
	}
	bridge := n.Options["com.docker.network.bridge.name"]
	if bridge == "" && n.Driver == "bridge" && len(n.ID) >= 12 {
		bridge = "br-" + n.ID[:12]
	}
	if ifc, err := net.InterfaceByName(bridge); bridge != "" && err == nil {
		if addrs, err := ifc.Addrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
					return ipn.IP.String(), nil
				}
			}
		}
	}
	for _, c := range n.IPAM.Config {
		if p := c.Subnet; p.IsValid() && p.Addr().Is4() && p.Bits() < 31 {
			return p.Masked().Addr().Next().String(), nil
		}
	}
	return "", fmt.Errorf("the Docker network %q has no IPv4 gateway address, so a container on it cannot reach the agent's machine: give the agent --api-url with an address containers reach", network)
}

// ensureRelay makes sure something accepts connections at addr: the
// server itself (it listens on all addresses, or on addr) or a relay of the
// runner's to target. It reports whether the runner relays.
//
// The relay's listener has SO_REUSEPORT (on Linux), as the relays of other
// agents on the machine have: each agent relays the address for its own
// containers, which keep reaching the server when another agent exits. The
// server's own listener has no SO_REUSEPORT, so a listen that fails with
// EADDRINUSE means that the server (or some other program, which the
// agent cannot tell from it) holds the address: containers call it
// directly. Something merely answering at addr proves nothing: it may be
// the relay of another agent, which goes when that agent does.
func (r *Runner) ensureRelay(ctx context.Context, addr, target string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false, errors.New("the runner is closed")
	}
	if _, ok := r.relays[addr]; ok {
		return true, nil
	}
	ln, err := listenRelay(ctx, addr)
	if addrInUse(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	rl := &relay{ln: ln, target: target, log: r.log, conns: map[net.Conn]struct{}{}}
	rl.ctx, rl.cancel = context.WithCancel(context.Background())
	r.relays[addr] = rl
	rl.wg.Go(rl.serve)
	r.log.InfoContext(ctx, "relaying the server's loopback address to containers", "listen", addr, "target", target)
	return true, nil
}

// relay forwards TCP connections from its listener to target.
type relay struct {
	ln     net.Listener
	target string
	log    *slog.Logger
	ctx    context.Context // ends with close: bounds the dials to target
	cancel context.CancelFunc

	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (rl *relay) serve() {
	for {
		c, err := rl.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // out of file descriptors, say: the relay must live on
			rl.log.Warn("relay: accepting a connection failed", "listen", rl.ln.Addr().String(), "err", err)
			select {
			case <-rl.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		rl.wg.Go(func() { rl.forward(c) })
	}
}

func (rl *relay) forward(c net.Conn) {
	defer c.Close()
	d := net.Dialer{Timeout: 10 * time.Second}
	t, err := d.DialContext(rl.ctx, "tcp", rl.target)
	if err != nil {
		if rl.ctx.Err() != nil {
			return // closed
		}
		rl.log.Warn("relay: the server does not answer", "target", rl.target, "err", err)
		return
	}
	defer t.Close()
	if !rl.track(c, t) {
		return
	}
	defer rl.untrack(c, t)
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	wg.Go(func() { pipe(t, c) })
	wg.Go(func() { pipe(c, t) })
	wg.Wait()
}

func (rl *relay) track(conns ...net.Conn) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.closed {
		return false
	}
	for _, c := range conns {
		rl.conns[c] = struct{}{}
	}
	return true
}

func (rl *relay) untrack(conns ...net.Conn) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for _, c := range conns {
		delete(rl.conns, c)
	}
}

// close stops the relay and its connections, and waits for its goroutines.
func (rl *relay) close() {
	rl.ln.Close()
	rl.cancel()
	rl.mu.Lock()
	rl.closed = true
	for c := range rl.conns {
		c.Close()
	}
	rl.mu.Unlock()
	rl.wg.Wait()
}

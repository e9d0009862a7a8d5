package nodenet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
)

// Node is the node set-up of one raceguard process: the listen addresses, the owner table of
// NOTRACK rules, the firewall accept rules, and the periodic check that keeps them.
type Node struct {
	// Logf logs an informational line; nil discards it.
	Logf func(format string, args ...any)

	mu      sync.Mutex // serialises every change to the node; protects the fields below
	cfg     Config
	link    netlink.Link
	kind    LinkKind
	created map[netip.Addr]bool // addresses this process added
	tbl     *table              // nil until Prepare
	capture bool                // the table captures the pods' DNS (Capture), rather than holds (Hold)
	legacy  bool                // the iptables-legacy fallback was logged

	ready atomic.Bool // capturing, or, observing, listening: what Ready reports
}

// New returns the Node for cfg. It changes nothing.
func New(cfg Config) *Node {
	return &Node{cfg: cfg, created: map[netip.Addr]bool{}}
}

func (n *Node) logf(format string, args ...any) {
	if n.Logf != nil {
		n.Logf(format, args...)
	}
}

// HeldError is Preflight's answer when something other than a raceguard already serves DNS on a
// listen address.
type HeldError struct {
	Addr   netip.Addr
	Port   uint16
	Socket string // the socket, or the IPVS virtual service, that holds it
	Holder string // who holds it, as far as raceguard can see
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s is already served on the node: %s held by %s; refusing to start, nothing on the node was changed",
		netip.AddrPortFrom(e.Addr, e.Port), e.Socket, e.Holder)
}

// Preflight checks, changing nothing, that this process may set the node up for cfg: it has
// CAP_NET_ADMIN, and no other process serves DNS on one of the addresses. Sockets of a live
// raceguard (one whose owner table lists the address: the old pod of a surge rollout) do not
// count; a wildcard socket (0.0.0.0:53) and kube-proxy's IPVS virtual services do.
func Preflight(cfg Config) error {
	if err := cfg.Check(); err != nil {
		return err
	}
	if err := checkNetAdmin(); err != nil {
		return err
	}
	vs, err := ipvsHolds(cfg.Port, cfg.Addrs)
	if err != nil {
		return err
	}
	if len(vs) > 0 {
		a, _ := netip.ParseAddrPort(strings.Fields(vs[0])[1])
		return &HeldError{Addr: a.Addr(), Port: cfg.Port, Socket: "IPVS virtual service " + vs[0],
			Holder: "kube-proxy in IPVS mode, which takes its packets before any socket (use the link-local address alone: link-local mode)"}
	}
	socks, err := sockets(cfg.Port, cfg.Addrs)
	if err != nil {
		return err
	}
	own, err := ownSockets()
	if err != nil {
		return err
	}
	cl, err := claims()
	if err != nil {
		return err
	}
	for _, a := range cfg.Addrs {
		for _, s := range socks {
			if _, mine := own[s.inode]; mine || !s.covers(a) {
				continue
			}
			if len(cl[a]) > 0 && !s.local.Addr().IsUnspecified() {
				continue // a live raceguard's socket: a surge rollout
			}
			return &HeldError{Addr: a, Port: cfg.Port, Socket: s.String(), Holder: holder(s)}
		}
	}
	return nil
}

// Prepare makes the link and the addresses, before the servers bind them, and the table, which
// holds: until Capture it takes no pod's DNS (see want).
func (n *Node) Prepare() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ensureAddrs(false); err != nil {
		return err
	}
	t, err := openTable()
	if err != nil {
		return err
	}
	n.tbl = t
	n.logf("nftables table inet %s (owner: this process)", t.t.Name)
	if err := t.apply(t.want(n.cfg, false)); err != nil {
		return err
	}
	rulesPresent.WithLabelValues("notrack").Set(1)
	n.setState()
	return nil
}

// setState exports the state of the table: capture, hold, or observe.
func (n *Node) setState() {
	st := "hold"
	switch {
	case n.cfg.Observe:
		st = "observe"
	case n.capture:
		st = "capture"
	}
	state.Reset()
	state.WithLabelValues(st).Set(1)
}

// ensureAddrs makes the link and every missing address; restore counts what it put back.
func (n *Node) ensureAddrs(restore bool) error {
	l, kind, err := ensureLink(n.cfg.Interface)
	if err != nil {
		return err
	}
	if kind != n.kind {
		if kind == LinkLo {
			fallbacks.WithLabelValues("no_dummy").Inc()
			n.logf("this kernel has no dummy links: the node-local addresses go on lo (IPv4 ones labelled %s)", loLabel)
		} else {
			n.logf("node-local addresses on dummy link %s", n.cfg.Interface)
		}
		link.Reset()
		link.WithLabelValues(string(kind)).Set(1)
	}
	n.link, n.kind = l, kind
	have, err := nodeAddrs(n.cfg.Addrs)
	if err != nil {
		return err
	}
	for _, a := range n.cfg.Addrs {
		if _, ok := have[a]; !ok {
			if err := addAddr(l, kind, a); err != nil {
				addressPresent.WithLabelValues(a.String()).Set(0)
				return err
			}
			n.created[a] = true
			if restore {
				restores.WithLabelValues("address").Inc()
				n.logf("restored address %s on %s", a, l.Attrs().Name)
			}
		}
		addressPresent.WithLabelValues(a.String()).Set(1)
	}
	return nil
}

// serving reports whether this process has a UDP socket and a listening TCP socket bound to
// every address.
func (n *Node) serving() (bool, error) {
	socks, err := sockets(n.cfg.Port, n.cfg.Addrs)
	if err != nil {
		return false, err
	}
	own, err := ownSockets()
	if err != nil {
		return false, err
	}
	bound := map[string]bool{}
	for _, s := range socks {
		if _, mine := own[s.inode]; mine {
			bound[s.String()] = true
		}
	}
	for _, a := range n.cfg.Addrs {
		for _, p := range []string{"udp", "tcp"} {
			if !bound[socket{proto: p, local: netip.AddrPortFrom(a, n.cfg.Port)}.String()] {
				return false, nil
			}
		}
	}
	return true, nil
}

// waitServing polls serving until it holds or ctx ends.
func (n *Node) waitServing(ctx context.Context) error {
	for {
		ok, err := n.serving()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the server does not listen on UDP and TCP %v port %d (a bind directive with exactly these addresses is needed): %w",
				n.cfg.Addrs, n.cfg.Port, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Capture puts the NOTRACK rules in, and the firewall accept rules, once the server listens on
// every address (node-cache too installs its rules only once CoreDNS runs: a rule for a server
// that failed to start would send the node's DNS nowhere). It waits at most timeout for the
// server. Observing, it only waits for the server, and changes nothing.
func (n *Node) Capture(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := n.waitServing(ctx); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.tbl == nil {
		return errors.New("no table: the node set-up was torn down")
	}
	if n.cfg.Observe {
		n.ready.Store(true)
		return nil
	}
	if err := n.tbl.apply(n.tbl.want(n.cfg, true)); err != nil {
		return err
	}
	n.capture = true
	n.ready.Store(true)
	rulesPresent.WithLabelValues("notrack").Set(1)
	n.setState()
	n.firewall(false)
	return nil
}

// Hold takes the NOTRACK rules out again: the pods' DNS takes kube-proxy's path to kube-dns, and
// what reaches the addresses untranslated is dropped or refused (see want). The firewall accept
// rules stay, harmless, for the next Capture.
func (n *Node) Hold() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.tbl == nil || n.cfg.Observe || !n.capture {
		return nil
	}
	n.capture = false
	n.ready.Store(false)
	n.setState()
	if err := n.tbl.apply(n.tbl.want(n.cfg, false)); err != nil {
		rulesPresent.WithLabelValues("notrack").Set(0)
		return err
	}
	return nil
}

// Capturing reports whether the NOTRACK rules are in.
func (n *Node) Capturing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.capture
}

// firewall ensures the accept rules; restore counts what it put back.
func (n *Node) firewall(restore bool) {
	if !n.cfg.Firewall {
		return
	}
	added, moved, err := ensureFirewall(n.cfg)
	if err != nil {
		errorsTotal.WithLabelValues("firewall").Inc()
		n.logf("firewall accept rules: %v", err)
	}
	if restore && added > 0 {
		restores.WithLabelValues("firewall").Add(float64(added))
		n.logf("restored %d firewall accept rule(s) in iptables' filter chains", added)
	}
	if moved > 0 {
		restores.WithLabelValues("firewall_order").Add(float64(moved))
		n.logf("moved %d firewall accept rule(s) back to the top of iptables' filter chains: other rules had been put above them "+
			"(kube-proxy's jumps, when it starts after raceguard, or a firewall's), which could drop the untracked DNS first", moved)
	}
	present, ok := firewallPresent(n.cfg)
	if ok {
		rulesPresent.WithLabelValues("firewall").Set(boolGauge(present))
	}
	if !n.legacy && legacyFilter() {
		n.legacy = true
		fallbacks.WithLabelValues("iptables_legacy").Inc()
		n.logf("iptables-legacy has a filter table, which raceguard cannot reach over netlink: if its INPUT or OUTPUT policy drops untracked packets, "+
			"accept UDP and TCP port %d to and from %v there", n.cfg.Port, n.cfg.Addrs)
	}
}

// Ready reports whether the server takes the pods' DNS (the NOTRACK rules are in), or, observing,
// whether it listens.
func (n *Node) Ready() bool { return n.ready.Load() }

// Check puts back whatever of the set-up is missing, and counts it.
func (n *Node) Check() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ensureAddrs(true); err != nil {
		errorsTotal.WithLabelValues("address").Inc()
		n.logf("node-local addresses: %v", err)
	}
	if n.tbl != nil {
		want := n.tbl.want(n.cfg, n.capture)
		ok, err := n.tbl.intact(want)
		if err == nil && !ok {
			if err = n.tbl.apply(want); err == nil {
				restores.WithLabelValues("notrack").Inc()
				n.logf("restored the rules of table inet %s", n.tbl.t.Name)
			}
		}
		if err != nil {
			errorsTotal.WithLabelValues("notrack").Inc()
			n.logf("table inet %s: %v", n.tbl.t.Name, err)
		}
		rulesPresent.WithLabelValues("notrack").Set(boolGauge(err == nil))
	}
	if n.capture {
		n.firewall(true)
	}
}

// Reconfigure applies cfg, a reload's new configuration: new addresses are made and the rules
// rewritten. Addresses no longer configured are left on the node until Teardown.
func (n *Node) Reconfigure(cfg Config) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cfg.Equal(cfg) {
		return nil
	}
	if cfg.Observe != n.cfg.Observe {
		return errors.New("a reload cannot turn capture on or off: restart the server")
	}
	old := n.cfg
	n.cfg = cfg
	for _, a := range old.Addrs {
		if !containsAddr(cfg.Addrs, a) {
			addressPresent.DeleteLabelValues(a.String())
		}
	}
	if err := n.ensureAddrs(false); err != nil {
		return err
	}
	if n.tbl != nil {
		if err := n.tbl.apply(n.tbl.want(cfg, n.capture)); err != nil {
			return err
		}
	}
	if old.Firewall && !cfg.Firewall {
		return removeFirewall()
	}
	if n.capture {
		n.firewall(false)
	}
	return nil
}

// Teardown removes what raceguard made, once the server is done (after lameduck): its table
// always; and, unless another process still serves one of the addresses (the new pod of a surge
// rollout), the firewall accept rules and the addresses and link a raceguard created. What an
// administrator made is never removed.
func (n *Node) Teardown() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	if n.tbl != nil {
		errs = append(errs, n.tbl.close())
		n.tbl = nil
		n.capture = false
		n.ready.Store(false)
		rulesPresent.WithLabelValues("notrack").Set(0)
		state.Reset()
	}
	if peers, socks, own := n.peers(); len(peers) > 0 {
		n.logf("%s still served by %s: leaving the addresses and firewall rules to it", netip.AddrPortFrom(n.cfg.Addrs[0], n.cfg.Port), strings.Join(peers, ", "))
		handed, err := handOver(socks, own)
		if err != nil {
			errs = append(errs, fmt.Errorf("handing the UDP sockets over: %w", err))
		}
		n.logf("handed %d UDP sockets over: new queries go to the other process's, what was queued here is answered", handed)
		return errors.Join(errs...)
	}
	if n.cfg.Firewall {
		errs = append(errs, removeFirewall())
		rulesPresent.DeleteLabelValues("firewall")
	}
	have, err := nodeAddrs(n.cfg.Addrs)
	errs = append(errs, err)
	for a, na := range have {
		if n.created[a] || na.raceguards(a) {
			errs = append(errs, delAddr(na.link, a))
			addressPresent.WithLabelValues(a.String()).Set(0)
		}
	}
	errs = append(errs, delLinkIfEmpty(n.cfg.Interface))
	link.Reset()
	return errors.Join(errs...)
}

// peers returns the other processes' sockets on the listen addresses, and what handOver needs:
// every socket there and which of them are this process's. A failure to list them is no peer.
func (n *Node) peers() (peers []string, socks []socket, own map[uint32]int) {
	socks, err := sockets(n.cfg.Port, n.cfg.Addrs)
	if err != nil {
		return nil, nil, nil
	}
	if own, err = ownSockets(); err != nil {
		return nil, nil, nil
	}
	for _, s := range socks {
		if _, mine := own[s.inode]; !mine && !s.local.Addr().IsUnspecified() {
			peers = append(peers, s.String())
		}
	}
	return peers, socks, own
}

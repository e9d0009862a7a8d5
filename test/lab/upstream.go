package lab

import (
	"context"
	_ "embed"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin/file"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

//go:embed external.db
var externalZone string

// Upstream is the lab's "internet": an authoritative server for a root zone (external.db), run
// in-process with CoreDNS's own file plugin on sockets inside the upstream namespace. It answers
// after a configurable delay and counts what it is asked.
type Upstream struct {
	Addr string // host:port inside the lab

	delay   atomic.Int64 // time.Duration before each answer
	servers []*dns.Server
	drop    atomic.Pointer[func(name string) bool] // queries never answered
	ttls    atomic.Pointer[[2]uint32]              // min and max TTL of SpreadTTLs; nil for the zone's

	mu     sync.Mutex
	counts map[string]int // "name/TYPE" (lower-case name) -> queries; protected by mu
}

// StartUpstream serves external.db on addr (port 0 picks one), with its sockets made in namespace
// ns, or in the caller's own when ns is empty.
func StartUpstream(ns, addr string) (*Upstream, error) { return startUpstream(ns, addr, false) }

// StartKubeUpstream is StartUpstream that also serves the sample cluster.local zone: what a
// node-local server forwards to, kube-dns and the internet beyond it, in one.
func StartKubeUpstream(ns, addr string) (*Upstream, error) { return startUpstream(ns, addr, true) }

func startUpstream(ns, addr string, cluster bool) (*Upstream, error) {
	z, err := file.Parse(strings.NewReader(externalZone), ".", "external.db", 0)
	if err != nil {
		return nil, fmt.Errorf("upstream zone: %w", err)
	}
	f := file.File{Zones: file.Zones{Z: map[string]*file.Zone{".": z}, Names: []string{"."}}}
	if cluster {
		p, err := RepoPath("zones/cluster.local.db")
		if err != nil {
			return nil, err
		}
		text, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		cz, err := file.Parse(strings.NewReader(string(text)), "cluster.local.", p, 0)
		if err != nil {
			return nil, fmt.Errorf("upstream cluster zone: %w", err)
		}
		f.Zones.Z["cluster.local."] = cz
		f.Zones.Names = append(f.Zones.Names, "cluster.local.")
	}
	u := &Upstream{Addr: addr, counts: map[string]int{}}

	pc, ln, err := ListenBoth(ns, addr)
	if err != nil {
		return nil, fmt.Errorf("upstream listen: %w", err)
	}
	u.Addr = pc.LocalAddr().String()

	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if len(r.Question) == 1 {
			q := r.Question[0]
			u.mu.Lock()
			u.counts[strings.ToLower(q.Name)+"/"+dns.TypeToString[q.Qtype]]++
			u.mu.Unlock()
		}
		if d := time.Duration(u.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		if f := u.drop.Load(); f != nil && len(r.Question) == 1 && (*f)(strings.ToLower(r.Question[0].Name)) {
			return // an upstream that never answers this name
		}
		// As CoreDNS's server does: compress and truncate each reply to the client's size.
		w = request.NewScrubWriter(r, w)
		if t := u.ttls.Load(); t != nil && len(r.Question) == 1 {
			w = &ttlWriter{ResponseWriter: w, ttl: spreadTTL(r.Question[0].Name, t[0], t[1])}
		}
		rcode, _ := f.ServeDNS(context.Background(), w, r)
		if rcode != dns.RcodeSuccess && rcode != dns.RcodeNameError && !wrote(rcode) {
			m := new(dns.Msg)
			m.SetRcode(r, rcode)
			w.WriteMsg(m)
		}
	})
	started := make(chan error, 2)
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		s.NotifyStartedFunc = func() { started <- nil }
		u.servers = append(u.servers, s)
		go func() {
			if err := s.ActivateAndServe(); err != nil {
				started <- err
			}
		}()
	}
	for range 2 {
		if err := <-started; err != nil {
			u.Close()
			return nil, fmt.Errorf("upstream serve: %w", err)
		}
	}
	return u, nil
}

// ListenBoth opens UDP and TCP sockets on one address in namespace ns. With port 0 the UDP port
// the kernel picks may be taken for TCP by another process: then it tries another, a few times.
func ListenBoth(ns, addr string) (pc net.PacketConn, ln net.Listener, err error) {
	_, port, _ := net.SplitHostPort(addr)
	for range 10 {
		err = Do(ns, func() error {
			var err error
			if pc, err = net.ListenPacket("udp", addr); err != nil {
				return err
			}
			if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
				pc.Close()
			}
			return err
		})
		if err == nil || port != "0" {
			return pc, ln, err
		}
	}
	return nil, nil, err
}

// wrote reports whether a plugin rcode means the reply was already written (plugin.ClientWrite).
func wrote(rcode int) bool {
	switch rcode {
	case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeFormatError, dns.RcodeNotImplemented:
		return false
	}
	return true
}

// SetDelay makes the upstream wait d before each answer.
func (u *Upstream) SetDelay(d time.Duration) { u.delay.Store(int64(d)) }

// Drop makes the upstream never answer names (lower-cased, fully qualified) for which f is true;
// nil answers everything again.
func (u *Upstream) Drop(f func(name string) bool) {
	if f == nil {
		u.drop.Store(nil)
		return
	}
	u.drop.Store(&f)
}

// SpreadTTLs gives each name its own TTL, from min to max seconds by a hash of the name, on its
// records and on the SOA of its negative answers. With the zone's one TTL every name a cache
// filled in the same second expires in the same second, and comes back as a wave of misses; real
// names have spread TTLs, which make the misses a steady share of a long load.
func (u *Upstream) SpreadTTLs(min, max uint32) { u.ttls.Store(&[2]uint32{min, max}) }

// spreadTTL is name's TTL between min and max.
func spreadTTL(name string, min, max uint32) uint32 {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(name)))
	return min + h.Sum32()%(max-min+1)
}

// ttlWriter gives every record of a reply, and the negative-caching TTL of its SOA, one TTL.
type ttlWriter struct {
	dns.ResponseWriter
	ttl uint32
}

func (w *ttlWriter) WriteMsg(m *dns.Msg) error {
	m = m.Copy() // its records may be the zone's own
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			rr.Header().Ttl = w.ttl
			if soa, ok := rr.(*dns.SOA); ok {
				soa.Minttl = w.ttl
			}
		}
	}
	return w.ResponseWriter.WriteMsg(m)
}

// Queries returns how many queries for name (any case) and type the upstream has received.
func (u *Upstream) Queries(name string, qtype uint16) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[strings.ToLower(dns.Fqdn(name))+"/"+dns.TypeToString[qtype]]
}

// Total returns how many queries the upstream has received in all.
func (u *Upstream) Total() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, c := range u.counts {
		n += c
	}
	return n
}

// TotalType returns how many queries of type qtype the upstream has received in all.
func (u *Upstream) TotalType(qtype uint16) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	suffix := "/" + dns.TypeToString[qtype]
	n := 0
	for k, c := range u.counts {
		if strings.HasSuffix(k, suffix) {
			n += c
		}
	}
	return n
}

// Reset forgets the counts.
func (u *Upstream) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.counts)
}

// Close stops the upstream's servers.
func (u *Upstream) Close() {
	for _, s := range u.servers {
		s.Shutdown()
	}
}

// FreeLoopbackPorts returns n distinct loopback ports, each free for UDP and TCP a moment ago, for
// servers started in another process.
func FreeLoopbackPorts(n int) ([]string, error) {
	ports := make([]string, 0, n)
	for range n {
		pc, ln, err := ListenBoth("", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		// Held open until all are picked, so that none is picked twice.
		defer pc.Close()
		defer ln.Close()
		_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
		ports = append(ports, port)
	}
	return ports, nil
}

package nodelocal

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/recovery"
)

// DefaultProbe is the name the upstream probe asks by default: the API server's Service, which
// every cluster has under the default cluster domain.
const DefaultProbe = "kubernetes.default.svc.cluster.local."

// probeTimeout bounds one probe: forward gives up on an upstream that does not answer after its
// own timeouts, and a probe must not wait for them all.
const probeTimeout = 2 * time.Second

// watchers are the plugins that only watch a query go by, and rememberers the ones that answer
// from memory: the probe starts below both, so that the block's request counters, logs and
// traces describe the clients' queries, not the probe, and no cache answers it for an upstream
// that is gone.
var (
	watchers    = map[string]bool{"trace": true, "shed": true, "prometheus": true, "errors": true, "log": true, "dnstap": true}
	rememberers = map[string]bool{"cache": true, "collapse": true}
)

// probeEntry returns the handler the probe enters the block's chain at: the first one after
// nodelocal, the last rememberer and the watchers. The handlers come in directive order, which is
// the chain's, and the watchers all come before the rememberers in it.
func probeEntry(handlers []plugin.Handler, nl plugin.Handler) plugin.Handler {
	from := -1
	for i, h := range handlers {
		if h == nl || from >= 0 && rememberers[h.Name()] {
			from = i
		}
	}
	if from < 0 {
		return nil
	}
	for _, h := range handlers[from+1:] {
		if !watchers[h.Name()] {
			return h
		}
	}
	return nil
}

// upstreamProbe asks whether the server block's upstream answers: one A query for name, sent down
// the block's own chain below its cache (probeEntry), as the server's own query (query.MarkOwn,
// which a raceguard below lets through). A reply that is not SERVFAIL answers, NXDOMAIN included;
// no reply, SERVFAIL or a plugin error does not.
type upstreamProbe struct {
	entry plugin.Handler
	name  string
	addr  net.Addr // the block's first address and port, as the probe's client and server address
}

func (p *upstreamProbe) probe(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(query.MarkOwn(ctx), probeTimeout)
	defer cancel()
	w := &probeWriter{addr: p.addr}
	m := new(dns.Msg).SetQuestion(p.name, dns.TypeA)
	var rcode int
	// A plugin's panic fails the probe, never the process (package recovery logs and counts it).
	if perr := recovery.Do(ctx, "probe", func() { rcode, err = p.entry.ServeDNS(ctx, w, m) }); perr != nil {
		return perr
	}
	switch r := w.reply(); {
	case r != nil && r.Rcode != dns.RcodeServerFailure:
		return nil
	case r != nil:
		return fmt.Errorf("SERVFAIL for %s A", p.name)
	case err != nil:
		return err
	default:
		return fmt.Errorf("no reply for %s A (rcode %s): is it a name the block sends upstream?", p.name, dns.RcodeToString[rcode])
	}
}

// probeWriter is the probe's client: it keeps the reply.
type probeWriter struct {
	addr net.Addr
	mu   sync.Mutex // protects msg: a plugin that gave up on the probe may still write
	msg  *dns.Msg
}

func (w *probeWriter) reply() *dns.Msg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.msg
}

// WriteMsg implements dns.ResponseWriter.
func (w *probeWriter) WriteMsg(m *dns.Msg) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msg = m
	return nil
}

// Write implements dns.ResponseWriter.
func (w *probeWriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	return len(b), w.WriteMsg(m)
}

// LocalAddr implements dns.ResponseWriter.
func (w *probeWriter) LocalAddr() net.Addr { return w.addr }

// RemoteAddr implements dns.ResponseWriter.
func (w *probeWriter) RemoteAddr() net.Addr { return w.addr }

// Close implements dns.ResponseWriter.
func (w *probeWriter) Close() error { return nil }

// TsigStatus implements dns.ResponseWriter.
func (w *probeWriter) TsigStatus() error { return nil }

// TsigTimersOnly implements dns.ResponseWriter.
func (w *probeWriter) TsigTimersOnly(bool) {}

// Hijack implements dns.ResponseWriter.
func (w *probeWriter) Hijack() {}

// gate turns probe results into capture decisions, with hysteresis: rise answered probes in a
// row capture, fall unanswered ones in a row hold, and a result that agrees with the state resets
// the count. A flapping upstream thus moves the capture at most once per fall probes.
type gate struct {
	rise, fall int
	capturing  bool
	streak     int // results in a row against the state
}

// observe counts one probe result and reports whether the state changed.
func (g *gate) observe(answered bool) bool {
	if answered == g.capturing {
		g.streak = 0
		return false
	}
	g.streak++
	need := g.fall
	if !g.capturing {
		need = g.rise
	}
	if g.streak < need {
		return false
	}
	g.capturing, g.streak = answered, 0
	return true
}

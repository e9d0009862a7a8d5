// Package recovery keeps a panic in a goroutine raceguard starts from taking the process down.
//
// dnsserver's ServeDNS recovers a panic in any plugin of a query's chain, logs it, counts it in
// coredns_panics_total and answers SERVFAIL: one query fails, the server lives. raceguard runs
// parts of a chain in goroutines of its own (a collapse flight, a sibling prefetch, a search walk
// and its tries), where that recover does not reach, so a panic there (a kubernetes or forward bug
// on a cache miss) would end the process. Every such goroutine runs its work through Do, which
// recovers as dnsserver does and turns the panic into an error for the queries that wait on it:
// they get SERVFAIL, as the client of a query whose chain panicked does.
package recovery

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/metrics/vars"
	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/raceguard/raceguard/internal/module"
)

var log = clog.NewWithPlugin(module.Name)

// Error is a panic recovered by Do.
type Error struct {
	Where string // the goroutine's work: "collapse", "prefetch", "walk"
	Value any    // what was passed to panic
}

func (e *Error) Error() string {
	return fmt.Sprintf("recovered from panic in %s: %v", e.Where, e.Value)
}

// Do runs f and returns nil, or, when f panics, an *Error after logging the panic with its stack
// and counting it twice: in CoreDNS's own coredns_panics_total, as dnsserver counts the panics it
// recovers, and in coredns_raceguard_panics_total by where. ctx names the server for the log line
// and the metric.
func Do(ctx context.Context, where string, f func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			server := metrics.WithServer(ctx)
			log.Errorf("Recovered from panic in %s: %q %v\n%s", where, server, v, debug.Stack())
			vars.Panic.Inc()
			panics.WithLabelValues(server, where).Inc()
			err = &Error{Where: where, Value: v}
		}
	}()
	f()
	return nil
}

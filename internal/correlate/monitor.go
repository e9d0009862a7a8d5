package correlate

import (
	"os"
	"sync/atomic"
	"time"

	"github.com/raceguard/raceguard/internal/conntrack"
	"github.com/raceguard/raceguard/internal/process"
)

// events forwards the DNS side's events to the current Monitor, whichever it is.
type events struct{ cur atomic.Pointer[Monitor] }

// LateSibling implements fingerprint.Sink.
func (e *events) LateSibling(loss time.Time) {
	if m := e.cur.Load(); m != nil {
		m.LateSibling(loss)
	}
}

// Retransmit implements fingerprint.Sink.
func (e *events) Retransmit() {
	if m := e.cur.Load(); m != nil {
		m.Retransmit()
	}
}

// Events is the sink every fingerprint.Tracker reports to.
var Events = &events{}

var (
	monitor process.Resource // the process's Monitor
	current *Monitor         // guarded by monitor's lock: set only in start and join
)

// NodeName returns name, else NODE_NAME from the environment, else the host name.
func NodeName(name string) string {
	if name != "" {
		return name
	}
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}

// Acquire starts the process's Monitor with cfg, or reconfigures the running one, and counts one
// more user. A conntrack source that cannot be read (no CAP_NET_ADMIN and no procfs) gives a
// reader whose reads fail: the Monitor gets no conntrack signals and the up gauge is 0. DNS
// service is never affected.
func Acquire(cfg Config) {
	cfg.Node = NodeName(cfg.Node)
	monitor.Acquire(func() func() {
		startCurrent(cfg)
		return stopCurrent
	}, func() {
		if current.cfg != cfg {
			stopCurrent()
			startCurrent(cfg)
		}
	})
}

// Release counts one user less, and stops the Monitor when none is left.
func Release() { monitor.Release() }

// startCurrent starts a Monitor with cfg as the current one.
func startCurrent(cfg Config) {
	r, err := conntrack.Open(cfg.Source, cfg.ProcPath, log.Infof)
	if err != nil {
		log.Warningf("conntrack statistics unavailable (%v): late siblings are still counted, without correlation", err)
		r = nil
	}
	conntrack.SetSource(r, cfg.Node)
	current = newMonitor(cfg, r)
	Events.cur.Store(current)
	current.start()
}

// stopCurrent stops and forgets the current Monitor.
func stopCurrent() {
	Events.cur.Store(nil)
	current.halt()
	conntrack.SetSource(nil, "")
	if current.reader != nil {
		current.reader.Close()
	}
	current = nil
}

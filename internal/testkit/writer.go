package testkit

import (
	"net"

	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// Writer is a dns.ResponseWriter for benchmarks: a client at one address whose replies go
// nowhere. Unlike CoreDNS's test.ResponseWriter, which parses its address on every call, it
// returns the same net.Addr each time, as miekg/dns's writers do, so that a benchmark measures
// the code under test.
type Writer struct {
	test.ResponseWriter
	Addr net.Addr
}

// RemoteAddr returns w.Addr.
func (w *Writer) RemoteAddr() net.Addr { return w.Addr }

// WriteMsg discards m.
func (w *Writer) WriteMsg(*dns.Msg) error { return nil }

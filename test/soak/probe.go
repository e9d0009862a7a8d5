package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
)

// The probe is a pod's resolver, alongside dnsperf: each lookup opens a new UDP socket (a new
// conntrack flow, as glibc and musl do per getaddrinfo), sends the A and the AAAA back to back,
// waits probeTimeout for both, and resends what is missing from the same socket with the same ID,
// as a resolver with "options timeout:1 attempts:3" does. Its fresh flows are what the emulated
// race drops; its lookup latencies, retries included, are what a pod would see.
const (
	probeTimeout  = 1 * time.Second
	probeAttempts = 3
	probeInflight = 1000 // lookups in flight at most; a tick finding them all busy is skipped
)

// probeResult sums up the probe's lookups.
type probeResult struct {
	lookups, failed, skipped int
	lost                     int   // queries not answered within probeTimeout (then resent)
	servfail, badReply       int   // replies with SERVFAIL; replies that do not match the query
	sendErrors               int   // sockets that could not be made or written
	lat                      *hist // lookup latencies: first send to the last of both answers
}

// probeOutcome is one lookup's.
type probeOutcome struct {
	elapsed            time.Duration
	lost               int
	failed             bool
	servfail, badReply int
	sendError          bool
}

// runProbe looks up names at random from namespace ns at rate lookups per second until ctx ends,
// and returns once every lookup started has finished.
func runProbe(ctx context.Context, ns string, rate int, names []string) probeResult {
	res := probeResult{lat: newHist()}
	if rate <= 0 {
		return res
	}
	outcomes := make(chan probeOutcome, 1024)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for o := range outcomes {
			res.lookups++
			res.lost += o.lost
			res.servfail += o.servfail
			res.badReply += o.badReply
			switch {
			case o.sendError:
				res.sendErrors++
			case o.failed:
				res.failed++
			default:
				res.lat.add(o.elapsed)
			}
		}
	}()

	server := &net.UDPAddr{IP: net.ParseIP(lab.ClusterIP), Port: 53}
	sem := make(chan struct{}, probeInflight)
	var wg sync.WaitGroup
	skipped := 0
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(3, 4))
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			skipped++
			continue
		}
		name := names[rng.IntN(len(names))]
		wg.Go(func() {
			defer func() { <-sem }()
			outcomes <- lookup(ns, server, name)
		})
	}
	wg.Wait()
	close(outcomes)
	<-collected
	res.skipped = skipped
	return res
}

// lookup resolves name's A and AAAA as described above.
func lookup(ns string, server *net.UDPAddr, name string) (o probeOutcome) {
	var conn *net.UDPConn
	if err := lab.Do(ns, func() (err error) {
		conn, err = net.DialUDP("udp", nil, server)
		return err
	}); err != nil {
		return probeOutcome{sendError: true}
	}
	defer conn.Close()

	pending := map[uint16][]byte{} // ID -> packed query, until answered
	qtypes := map[uint16]uint16{}
	id := uint16(rand.Uint32())
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg).SetQuestion(name, t)
		m.Id = id
		b, err := m.Pack()
		if err != nil {
			return probeOutcome{sendError: true}
		}
		pending[id], qtypes[id] = b, t
		id++
	}
	start := time.Now()
	buf := make([]byte, 4096)
	for attempt := range probeAttempts {
		if attempt > 0 {
			o.lost += len(pending)
		}
		for _, b := range pending {
			if _, err := conn.Write(b); err != nil {
				return probeOutcome{sendError: true}
			}
		}
		conn.SetReadDeadline(time.Now().Add(probeTimeout))
		for len(pending) > 0 {
			n, err := conn.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				return probeOutcome{sendError: true}
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:n]) != nil || len(r.Question) != 1 || !r.Response {
				o.badReply++
				continue
			}
			if _, ok := pending[r.Id]; !ok {
				continue // a late reply to a query already answered
			}
			if r.Question[0].Qtype != qtypes[r.Id] || !strings.EqualFold(r.Question[0].Name, name) {
				o.badReply++
				continue
			}
			if r.Rcode == dns.RcodeServerFailure {
				o.servfail++
			}
			delete(pending, r.Id)
		}
		if len(pending) == 0 {
			o.elapsed = time.Since(start)
			return o
		}
	}
	o.lost += len(pending)
	o.failed = true
	return o
}

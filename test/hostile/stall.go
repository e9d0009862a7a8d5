package hostile

import (
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
)

// Stalled is what a flood of unique first tries did to a server whose upstream answers nothing.
type Stalled struct {
	Flood FloodResult // the unique first tries, each waited for Flood.Wait
	Own   FloodResult // a name the server answers itself, asked alongside
	// The server process: its goroutines and resident memory before the flood and at their
	// highest during it (goroutines sampled every 250 ms; memory is the kernel's high-water mark).
	BaseGoroutines, PeakGoroutines int
	BaseRSS, PeakRSS               int64
	CPU                            time.Duration // the server's CPU time over the flood
	PeakHeap, PeakStacks           float64       // the Go heap and goroutine stacks in use, bytes, at their highest sampled
	Walks                          float64       // walks raceguard started (0 for stock)
	Declined                       map[string]float64
}

// OwnName is the name Stall asks alongside the flood: the cluster zone answers it in the block.
const OwnName = "kubernetes.default.svc.cluster.local."

// Stall runs bin on l with the cluster zone in the block (l.File) and an upstream that drops every
// query unanswered, with no ICMP, and sends it rate unique first tries a second
// (u<N>.example.com.default.svc.cluster.local A, each client waiting 5 s, glibc's first timeout)
// for d, from 64 clients, with OwnName asked 50 times a second by a client of its own.
func Stall(bin, dir string, l Layout, d time.Duration, rate int) (Stalled, error) {
	up, err := lab.StartUpstream("", "127.0.0.1:0")
	if err != nil {
		return Stalled{}, err
	}
	defer up.Close()
	up.Drop(func(string) bool { return true })
	l.File = true
	s, err := start(bin, dir, "stall", l, up.Addr)
	if err != nil {
		return Stalled{}, err
	}
	defer s.proc.Stop()
	pid := s.proc.Pid()

	var st Stalled
	time.Sleep(time.Second) // let start-up settle before the baseline
	if st.BaseGoroutines, err = s.goroutines(); err != nil {
		return st, err
	}
	if st.BaseRSS, _, err = memory(pid); err != nil {
		return st, err
	}
	st.PeakGoroutines = st.BaseGoroutines
	cpu0, err := lab.CPUTime(pid)
	if err != nil {
		return st, err
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sampleErr error
	wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			m, err := s.scrape()
			if err != nil {
				sampleErr = fmt.Errorf("sampling the server: %w", err)
				return
			}
			st.PeakGoroutines = max(st.PeakGoroutines, int(m.Sum("go_goroutines", nil)))
			st.PeakHeap = max(st.PeakHeap, m.Sum("go_memstats_heap_inuse_bytes", nil))
			st.PeakStacks = max(st.PeakStacks, m.Sum("go_memstats_stack_inuse_bytes", nil))
		}
	})
	const wait = 5 * time.Second
	n := int(d.Seconds() * float64(rate))
	flood := Flood{Clients: 64, Net: 1, Rate: rate, N: n, Type: dns.TypeA, Wait: wait,
		Name: func(i int) string { return fmt.Sprintf("u%d.example.com.default.svc.cluster.local.", i) }}
	own := Flood{Clients: 1, Net: 2, Rate: 50, N: int(d.Seconds() * 50), Type: dns.TypeA, Wait: wait,
		Name: func(int) string { return OwnName }}
	var ownErr error
	wg.Go(func() { st.Own, ownErr = own.Run(s.addr) })
	st.Flood, err = flood.Run(s.addr)
	// The flood's Run returns at most wait after its last query; the walks it started have
	// given up by then, so the peak is in.
	close(stop)
	wg.Wait()
	if err == nil {
		err = ownErr
	}
	if err == nil {
		err = sampleErr
	}
	if err != nil {
		return st, err
	}
	if _, st.PeakRSS, err = memory(pid); err != nil {
		return st, err
	}
	cpu1, err := lab.CPUTime(pid)
	if err != nil {
		return st, err
	}
	st.CPU = cpu1 - cpu0
	m, err := s.scrape()
	if err != nil {
		return st, err
	}
	st.Walks = m.Sum("coredns_raceguard_search_walks_total", nil)
	st.Declined = map[string]float64{}
	for _, smp := range m {
		if smp.Name == "coredns_raceguard_search_declined_total" {
			st.Declined[smp.Labels["reason"]] += smp.Value
		}
	}
	return st, nil
}

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestTablesUnderLoad: dnsperf with many distinct clients (source ports) and names fills the
// fingerprint and search tables past their capacity; they stay within it and count the overflow.
func TestTablesUnderLoad(t *testing.T) {
	testenv.Tool(t, "dnsperf", "dnsperf")
	// The built binary, not the in-process server: under the race detector the latter is too
	// slow to fill the tables in a few seconds.
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.LoopbackUpstream(t)
	port, metricsAddr := freePort(t), testenv.FreePort(t)
	udp := "127.0.0.1:" + port
	p, err := lab.StartProcess("", bin, t.TempDir(), "load", `.:`+port+` {
    bind 127.0.0.1
    prometheus `+metricsAddr+`
    raceguard {
        node_search lab.internal
        conntrack off
    }
    cache 30
    collapse
    forward . `+up.Addr+`
}`, udp)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()

	// 1000 names, a third of the queries search expansions, cached after their first query, from
	// 200 clients (dnsperf gives each a socket of its own): up to 200000 (client port, name) pairs,
	// far more in the table's 15 s window than its 50000.
	var qs []string
	for n := range 500 {
		qs = append(qs, fmt.Sprintf("n%d.wild.example.com A", n), fmt.Sprintf("n%d.wild.example.com AAAA", n),
			fmt.Sprintf("x%d.wild.example.com.default.svc.cluster.local A", n))
	}
	// dnsperf sends line i from client i mod 200: a file of 1501 lines, prime to 200, sends every
	// name from every client over the passes.
	qs = append(qs, "example.org A")
	qfile := filepath.Join(t.TempDir(), "queries")
	if err := os.WriteFile(qfile, []byte(strings.Join(qs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(udp)
	start := time.Now()
	out, err := exec.Command("dnsperf", "-s", host, "-p", port, "-d", qfile, "-c", "200", "-l", "6", "-q", "500", "-t", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out)
	}
	t.Logf("dnsperf for %s: %s", time.Since(start).Round(time.Second), strings.Join(strings.Fields(string(out[strings.Index(string(out), "Queries sent"):])), " ")[:120])

	text, err := lab.ScrapeURL("", "http://"+metricsAddr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := lab.ParseMetrics(text)
	for _, table := range []string{"fingerprints", "search_pairs", "search_clients", "collapse_flights", "sibling_prefetches", "families"} {
		n := m.Sum("coredns_raceguard_table_entries", map[string]string{"table": table})
		c := m.Sum("coredns_raceguard_table_capacity", map[string]string{"table": table})
		t.Logf("table %s: %v of %v entries, %v overflows", table, n, c,
			m.Sum("coredns_raceguard_table_overflows_total", map[string]string{"table": table}))
		if c == 0 || n > c {
			t.Errorf("Expected table %s within its capacity, got %v of %v", table, n, c)
		}
	}
	if o := m.Sum("coredns_raceguard_table_overflows_total", map[string]string{"table": "fingerprints"}); o == 0 {
		t.Error("Expected the fingerprint table to have overflowed under this load, and counted it")
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(testenv.FreePort(t))
	return port
}

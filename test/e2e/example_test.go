package e2e

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/metrics"
	ctest "github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestCorefileExample runs Corefile.example as `make run` does, with its listeners on free ports
// and its forwarder pointed at a server that never answers (no internet here, or on a plane).
func TestCorefileExample(t *testing.T) {
	root, err := lab.RepoPath("")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root) // Corefile.example's paths are relative to the repository root
	body, err := os.ReadFile("Corefile.example")
	if err != nil {
		t.Fatal(err)
	}
	blackhole := blackhole(t)
	// health and ready do not say which port :0 gave them, so they get ports that were free a
	// moment ago; another process may take one in between, so try a few times.
	var health, ready, udp, tcp string
	for try := 0; ; try++ {
		health, ready = testenv.FreePort(t), testenv.FreePort(t)
		corefile := strings.NewReplacer(
			".:1053 {", ".:0 {",
			"127.0.0.1:9153", "127.0.0.1:0",
			"127.0.0.1:8080", health,
			"127.0.0.1:8181", ready,
			"/etc/resolv.conf", blackhole,
		).Replace(string(body))
		i, u, tc, err := testenv.CoreDNSServerAndPorts(corefile)
		if err == nil {
			udp, tcp = u, tc
			defer testenv.Stop(i)
			break
		}
		if try == 2 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("Could not start Corefile.example: %v", err)
		}
	}

	for _, tc := range []struct{ net, addr string }{{"udp", udp}, {"tcp", tcp}} {
		c := &dns.Client{Net: tc.net}
		m := new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
		r, _, err := c.Exchange(m, tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.net, err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.96.0.1" {
			t.Errorf("%s: Expected kubernetes.default.svc.cluster.local A 10.96.0.1, got %v", tc.net, r)
		}
	}

	// An external name the forwarder cannot reach fails fast with SERVFAIL rather than hanging.
	start := time.Now()
	m := new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 10 * time.Second}).Exchange(m, udp)
	if err != nil {
		t.Fatalf("External name: %v", err)
	}
	if took := time.Since(start); r.Rcode != dns.RcodeServerFailure || took > 2500*time.Millisecond {
		t.Errorf("Expected SERVFAIL within 2.5s for an unreachable upstream, got %s after %s", dns.RcodeToString[r.Rcode], took)
	}

	t.Run("README dig lines", func(t *testing.T) { readmeDigs(t, udp) })

	mfs := ctest.Scrape("http://" + metrics.ListenAddr + "/metrics")
	if v, _ := ctest.MetricValue("coredns_dns_requests_total", mfs); v == "" {
		t.Errorf("Expected coredns_dns_requests_total at %s", metrics.ListenAddr)
	}
	for _, u := range []string{"http://" + health + "/health", "http://" + ready + "/ready"} {
		if body := testenv.HTTPGet(t, u); body != "OK" {
			t.Errorf("Expected OK from %s, got %q", u, body)
		}
	}
}

// blackhole returns the address of a UDP and TCP server on loopback that reads queries and never
// answers, closed when the test ends.
func blackhole(t testing.TB) string {
	t.Helper()
	pc, ln, err := lab.ListenBoth("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return pc.LocalAddr().String()
}

// readmeDig is a dig command the README gives for `make run`'s server, and the record it says that
// command answers with.
var readmeDig = regexp.MustCompile("`(dig (?:\\+\\S+ )*@127\\.0\\.0\\.1 -p 1053 [^`]+)`" + `\s+(?:\([^)]*\)\s+)?with (?:a )?(\S+)`)

// readmeDigs runs, verbatim but for the server's address, each dig command of the README's
// introduction against the Corefile.example server at udp, and checks its answer has the record
// the README says: dig's defaults (it sets the AD bit, which raceguard never completes) are what
// a user who copies the line gets.
func readmeDigs(t *testing.T, udp string) {
	bin := testenv.Tool(t, "dig", "bind9-dnsutils")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	intro, _, _ := strings.Cut(string(readme), "\n## ")
	cmds := readmeDig.FindAllStringSubmatch(strings.Join(strings.Fields(intro), " "), -1)
	if len(cmds) < 2 {
		t.Fatalf("Expected the README's introduction to give two dig commands with what they answer, found %d", len(cmds))
	}
	host, port, _ := net.SplitHostPort(udp)
	for _, c := range cmds {
		args := strings.Fields(strings.Replace(c[1], "@127.0.0.1 -p 1053", "@"+host+" -p "+port, 1))
		out, err := exec.CommandContext(t.Context(), bin, args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c[1], err, out)
		}
		_, answer, _ := strings.Cut(string(out), ";; ANSWER SECTION:")
		answer, _, _ = strings.Cut(answer, "\n\n")
		found := false
		for _, line := range strings.Split(answer, "\n") {
			if f := strings.Fields(line); len(f) == 5 && (f[3] == c[2] || f[4] == c[2]) { // name TTL class type data
				found = true
			}
		}
		if !found {
			t.Errorf("README: `%s` answers with %s, it says; dig got:\n%s", c[1], c[2], out)
		}
	}
}

package labtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestCaptureClientQueries records the wire bytes of the queries real glibc and musl clients send
// (every address family, with and without EDNS) and writes them as seeds of the root package's
// FuzzServeDNS corpus (testdata/fuzz/FuzzServeDNS), which every `go test` then replays. It runs
// only when asked: RACEGUARD_CAPTURE=1 go test -run TestCaptureClientQueries ./test/labtest/
func TestCaptureClientQueries(t *testing.T) {
	if os.Getenv("RACEGUARD_CAPTURE") == "" {
		t.Skip("Set RACEGUARD_CAPTURE=1 to capture client queries into the fuzz corpus")
	}
	l := testenv.NewLab(t)
	if err := l.SetBackends(1); err != nil {
		t.Fatal(err)
	}
	var pc net.PacketConn
	if err := lab.Do(l.DNS[0], func() (err error) {
		pc, err = net.ListenPacket("udp", lab.DNSIPs[0]+":53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	type seed struct {
		q     []byte
		libcs map[lab.Libc]bool
	}
	var mu sync.Mutex
	seen := map[string]*seed{} // hash of the query without its ID -> the query and who sent it
	var libc lab.Libc
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			m := new(dns.Msg)
			if m.Unpack(q) != nil {
				continue
			}
			// NXDOMAIN makes the client walk its search list: more queries, of every shape.
			r := new(dns.Msg)
			r.SetRcode(m, dns.RcodeNameError)
			b, _ := r.Pack()
			pc.WriteTo(b, from)
			sum := sha256.Sum256(q[2:]) // the same query with another ID is not another seed
			h := hex.EncodeToString(sum[:6])
			mu.Lock()
			if seen[h] == nil {
				seen[h] = &seed{q: q, libcs: map[lab.Libc]bool{}}
			}
			seen[h].libcs[libc] = true
			mu.Unlock()
		}
	}()

	for _, c := range []lab.Libc{lab.Glibc, lab.Musl} {
		for _, fam := range []lab.Family{lab.Unspec, lab.Inet, lab.Inet6} {
			for _, opts := range [][]string{nil, {"edns0"}, {"edns0", "trust-ad"}, {"single-request"}} {
				mu.Lock()
				libc = c
				mu.Unlock()
				rc := lab.DefaultResolvConf().WithOptions(opts...)
				if _, err := l.Lookup(c, fam, rc, 1, "example.org", "Web.Default", "deep.a.b.c.d.example.com", "x."); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	dir, err := lab.RepoPath("testdata/fuzz/FuzzServeDNS")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Files are named for the libraries that sent the query: glibc and musl send the same bytes
	// (but the ID) for the same question without EDNS; only glibc has the EDNS options.
	for h, sd := range seen {
		who := "musl"
		switch {
		case sd.libcs[lab.Glibc] && sd.libcs[lab.Musl]:
			who = "glibc+musl"
		case sd.libcs[lab.Glibc]:
			who = "glibc"
		}
		name := filepath.Join(dir, who+"-"+h)
		if err := os.WriteFile(name, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", sd.q)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Wrote %d distinct client queries to %s", len(seen), dir)
}

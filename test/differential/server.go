package differential

import (
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// server is one CoreDNS process on loopback.
type server struct {
	name    string
	addr    string
	metrics string // prometheus listen address
	p       *lab.Process
}

// startServer runs the CoreDNS binary bin on corefile (a lab Corefile template) on a free loopback
// port, bound to 127.0.0.1 as test/bench's startLoopback does, forwarding to upstream.
func startServer(t *testing.T, bin, dir, name, corefile, upstream string) *server {
	t.Helper()
	port, metrics := testenv.FreeUDPTCPPort(t), testenv.FreeUDPTCPPort(t)
	text, err := lab.Render(corefile, lab.CorefileData{Port: port, Metrics: "127.0.0.1:" + metrics, Upstream: upstream}, dir)
	if err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, "errors\n", "bind 127.0.0.1\n    errors\n", 1)
	addr := "127.0.0.1:" + port
	p, err := lab.StartProcess("", bin, dir, name, text, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &server{name: name, addr: addr, metrics: "127.0.0.1:" + metrics, p: p}
}

package testenv

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// FreePort returns a loopback address with a port that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FreeUDPTCPPort returns a loopback port free for both UDP and TCP a moment ago, for a server
// started in another process.
func FreeUDPTCPPort(t testing.TB) string {
	t.Helper()
	ports, err := lab.FreeLoopbackPorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// HTTPGet returns the body of url once it answers 200 OK, trying for about a second; it fails t
// (without stopping it) and returns "" if it never does.
func HTTPGet(t *testing.T, url string) string {
	t.Helper()
	var last error
	for range 50 { // ready reports OK once every plugin is ready; allow it a moment
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
			last = err
		} else {
			last = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("GET %s: %v", url, last)
	return ""
}

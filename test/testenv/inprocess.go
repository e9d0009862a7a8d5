package testenv

import (
	"fmt"
	"regexp"
	"slices"
	"sync"

	"github.com/coredns/caddy"
	_ "github.com/coredns/coredns/core" // Hook in CoreDNS.
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/autopath"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/whoami"

	_ "github.com/raceguard/raceguard"
	_ "github.com/raceguard/raceguard/plugin/collapse"
	_ "github.com/raceguard/raceguard/plugin/nodelocal"
)

func init() {
	// The same slots hack/build-coredns.sh gives the directives in plugin.cfg.
	dnsserver.Directives = Splice(dnsserver.Directives)
}

// Splice returns directives with raceguard inserted just before rewrite, collapse just after cache
// and nodelocal just after bind. It panics if an anchor is missing, which only a CoreDNS upgrade
// can cause.
func Splice(directives []string) []string {
	out := slices.Clone(directives)
	for _, d := range []struct {
		name, anchor string
		after        int
	}{{"raceguard", "rewrite", 0}, {"collapse", "cache", 1}, {"nodelocal", "bind", 1}} {
		if slices.Contains(out, d.name) {
			continue
		}
		i := slices.Index(out, d.anchor)
		if i < 0 {
			panic(fmt.Sprintf("testenv: directive %q not found", d.anchor))
		}
		out = slices.Insert(out, i+d.after, d.name)
	}
	return out
}

var mu sync.Mutex // serialises caddy.Start, as coredns/test/server.go does

// CoreDNSServer starts a CoreDNS server from corefile in this process.
func CoreDNSServer(corefile string) (*caddy.Instance, error) {
	mu.Lock()
	defer mu.Unlock()
	caddy.Quiet = true
	dnsserver.Quiet = true
	return caddy.Start(NewInput(corefile))
}

// CoreDNSServerAndPorts starts a CoreDNS server from corefile and returns the UDP and TCP
// addresses of its first server block.
func CoreDNSServerAndPorts(corefile string) (i *caddy.Instance, udp, tcp string, err error) {
	i, err = CoreDNSServer(corefile)
	if err != nil {
		return nil, "", "", err
	}
	srvs := i.Servers()
	if len(srvs) == 0 {
		i.Stop()
		return nil, "", "", fmt.Errorf("testenv: corefile started no server")
	}
	if a := srvs[0].LocalAddr(); a != nil {
		udp = a.String()
	}
	if a := srvs[0].Addr(); a != nil {
		tcp = a.String()
	}
	return i, udp, tcp, nil
}

// Input implements caddy.Input for a Corefile held in memory.
type Input struct {
	corefile []byte
}

// NewInput returns an Input holding corefile.
func NewInput(corefile string) *Input { return &Input{corefile: []byte(corefile)} }

// Body implements the caddy.Input interface.
func (i *Input) Body() []byte { return i.corefile }

// Path implements the caddy.Input interface.
func (i *Input) Path() string { return "Corefile" }

// ServerType implements the caddy.Input interface.
func (i *Input) ServerType() string { return "dns" }

var (
	serverKeyPort = regexp.MustCompile(`(?m)^(\S[^{\n]*?):\d+(\s*\{)`)
	listenerPort  = regexp.MustCompile(`(?m)^(\s*(?:prometheus|health|ready|pprof)\s+\S*?):\d+\b`)
)

// EphemeralPorts rewrites the server block ports and the prometheus, health, ready and pprof
// listen ports of corefile to 0.
func EphemeralPorts(corefile string) string {
	corefile = serverKeyPort.ReplaceAllString(corefile, "$1:0$2")
	return listenerPort.ReplaceAllString(corefile, "$1:0")
}

// Stop stops the server instance i as a final shutdown does: its shutdown callbacks (every
// plugin's OnShutdown and OnFinalShutdown: watches, tickers, tables), then its servers.
// caddy.Instance.Stop alone stops the servers and leaves the rest running.
func Stop(i *caddy.Instance) {
	i.ShutdownCallbacks()
	i.Stop()
}

package nodelocal

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/raceguard/raceguard/internal/nodenet"
)

func TestSetupParse(t *testing.T) {
	tests := []struct {
		input, port        string
		binds              []string
		shouldErr          bool
		expectedErrContent string
		check              func(t *testing.T, cfg nodenet.Config)
	}{
		// positive
		{input: `nodelocal`, binds: []string{"169.254.20.10", "10.96.0.10"}, check: func(t *testing.T, cfg nodenet.Config) {
			want := []netip.Addr{netip.MustParseAddr("169.254.20.10"), netip.MustParseAddr("10.96.0.10")}
			if !slices.Equal(cfg.Addrs, want) || cfg.Port != 53 || cfg.Interface != "raceguard" || !cfg.Firewall ||
				cfg.Interval != nodenet.DefaultInterval || cfg.HealthPort != 0 {
				t.Errorf("Expected the defaults with the bind addresses, got %+v", cfg)
			}
		}},
		{input: `nodelocal {
			interface nodedns
			health_port 8080
			firewall off
			check_interval 30s
		}`, binds: []string{"fd00::a"}, port: "5353", check: func(t *testing.T, cfg nodenet.Config) {
			if cfg.Interface != "nodedns" || cfg.HealthPort != 8080 || cfg.Firewall || cfg.Interval != 30*time.Second ||
				cfg.Port != 5353 || cfg.Addrs[0] != netip.MustParseAddr("fd00::a") {
				t.Errorf("Expected every option applied, got %+v", cfg)
			}
		}},
		// negative
		{input: `nodelocal`, shouldErr: true, expectedErrContent: "needs the server block to bind its listen addresses"},
		{input: `nodelocal`, binds: []string{"0.0.0.0"}, shouldErr: true, expectedErrContent: `got "0.0.0.0"`},
		{input: `nodelocal`, binds: []string{"127.0.0.1"}, shouldErr: true, expectedErrContent: "want a unicast, non-loopback address"},
		{input: `nodelocal`, binds: []string{"169.254.20.10", "169.254.20.10"}, shouldErr: true, expectedErrContent: "given twice"},
		{input: `nodelocal example.org`, binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: "takes no zones"},
		{input: `nodelocal {
			interface
		}`, binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: "interface: missing value"},
		{input: `nodelocal {
			interface averyveryverylongname
		}`, binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: `interface: invalid value "averyveryverylongname"`},
		{input: `nodelocal {
			interface lo
		}`, binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: `not lo`},
		{input: `nodelocal {
			health_port 0
		}`, binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: `health_port: invalid value "0"`},
		{input: `nodelocal {
			health_port 53
		}`, binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: `health_port: invalid value 53: the DNS port`},
		{input: `nodelocal {
			firewall maybe
		}`, binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: `firewall: invalid value "maybe"`},
		{input: `nodelocal {
			check_interval 10ms
		}`, binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: `check_interval: invalid value "10ms"`},
		{input: `nodelocal {
			interface a
			interface b
		}`, binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: "interface: given more than once"},
		{input: `nodelocal {
			dummy on
		}`, binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: "unknown property 'dummy'"},
		{input: "nodelocal\nnodelocal", binds: []string{"169.254.20.10"}, shouldErr: true, expectedErrContent: "this plugin"},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		cfg := dnsserver.GetConfig(c)
		cfg.ListenHosts = tc.binds
		if len(tc.binds) == 0 {
			cfg.ListenHosts = []string{""}
		}
		cfg.Port = "53"
		if tc.port != "" {
			cfg.Port = tc.port
		}
		nl, err := parse(c)
		if tc.shouldErr {
			if err == nil {
				t.Errorf("Test %d: Expected an error, got none for %q", i, tc.input)
			} else if !strings.Contains(err.Error(), tc.expectedErrContent) {
				t.Errorf("Test %d: Expected an error with %q, got %v", i, tc.expectedErrContent, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Test %d: Expected no error, got %v", i, err)
			continue
		}
		tc.check(t, nl.cfg)
	}
}

// TestSetupOnce: the node has one set-up, so one server block of a Corefile has nodelocal.
func TestSetupOnce(t *testing.T) {
	c := caddy.NewTestController("dns", "nodelocal")
	dnsserver.GetConfig(c).ListenHosts = []string{"169.254.20.10"}
	dnsserver.GetConfig(c).Port = "53"
	if _, err := parse(c); err != nil {
		t.Fatal(err)
	}
	c2 := caddy.NewTestController("dns", "nodelocal")
	c2.Set(onceKey{}, c.Get(onceKey{})) // the same Corefile: caddy shares the instance's storage
	if _, err := parse(c2); err == nil || !strings.Contains(err.Error(), "more than one server block") {
		t.Errorf("Expected a second block's nodelocal refused, got %v", err)
	}
}

// TestNodeLocalInterfaces: raceguard finds nodelocal by the method, and ready by Ready.
func TestNodeLocalInterfaces(t *testing.T) {
	var h any = &NodeLocal{}
	if n, ok := h.(interface{ NodeLocal() bool }); !ok || !n.NodeLocal() {
		t.Error("Expected NodeLocal() true")
	}
	if r, ok := h.(interface{ Ready() bool }); !ok || r.Ready() {
		t.Error("Expected Ready() false before startup")
	}
}

// TestSetupProbeCapture: the probe's name must be one the block serves; capture off observes,
// with link-local addresses only and nothing for a probe or a firewall to keep.
func TestSetupProbeCapture(t *testing.T) {
	for _, tc := range []struct {
		input, key string
		binds      []string
		err        string
		check      func(t *testing.T, nl *NodeLocal)
	}{
		// positive
		{input: "nodelocal", key: ".:53", binds: []string{"169.254.20.10"}, check: func(t *testing.T, nl *NodeLocal) {
			if nl.probe != DefaultProbe || nl.cfg.Observe {
				t.Errorf("Expected the default probe and capture, got %q %v", nl.probe, nl.cfg.Observe)
			}
		}},
		{input: "nodelocal {\nprobe kubernetes.default.svc.cluster.example\n}", key: "cluster.example:53", binds: []string{"169.254.20.10"}, check: func(t *testing.T, nl *NodeLocal) {
			if nl.probe != "kubernetes.default.svc.cluster.example." {
				t.Errorf("Expected the probe's name fully qualified, got %q", nl.probe)
			}
		}},
		{input: "nodelocal {\nprobe off\n}", key: "example.org:53", binds: []string{"169.254.20.10"}, check: func(t *testing.T, nl *NodeLocal) {
			if nl.probe != "" {
				t.Errorf("Expected no probe, got %q", nl.probe)
			}
		}},
		{input: "nodelocal {\ncapture off\n}", key: ".:53", binds: []string{"169.254.20.11"}, check: func(t *testing.T, nl *NodeLocal) {
			if !nl.cfg.Observe || nl.cfg.Firewall || nl.probe != "" {
				t.Errorf("Expected an observing set-up without firewall rules or probe, got %+v probe %q", nl.cfg, nl.probe)
			}
		}},
		// negative
		{input: "nodelocal", key: "example.org:53", binds: []string{"169.254.20.10"}, err: `probe: invalid value "kubernetes.default.svc.cluster.local.": not in the server block's zones [example.org.]`},
		{input: "nodelocal {\nprobe bad!name\n}", key: ".:53", binds: []string{"169.254.20.10"}, err: `probe: invalid value "bad!name"`},
		{input: "nodelocal {\nprobe\n}", key: ".:53", binds: []string{"169.254.20.10"}, err: "probe: missing value"},
		{input: "nodelocal {\ncapture maybe\n}", key: ".:53", binds: []string{"169.254.20.10"}, err: `capture: invalid value "maybe"`},
		{input: "nodelocal {\ncapture off\n}", key: ".:53", binds: []string{"169.254.20.10", "10.96.0.10"}, err: "address 10.96.0.10: an observing server binds only link-local addresses"},
		{input: "nodelocal {\ncapture off\nfirewall on\n}", key: ".:53", binds: []string{"169.254.20.11"}, err: "firewall: not with capture off"},
		{input: "nodelocal {\ncapture off\nprobe kubernetes.default.svc.cluster.local\n}", key: ".:53", binds: []string{"169.254.20.11"}, err: "probe: not with capture off"},
	} {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = []string{tc.key}
		cfg := dnsserver.GetConfig(c)
		cfg.ListenHosts, cfg.Port = tc.binds, "53"
		nl, err := parse(c)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: Expected an error with %q, got %v", tc.input, tc.err, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: Expected no error, got %v", tc.input, err)
			continue
		}
		tc.check(t, nl)
	}
}

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"

	"github.com/raceguard/raceguard/test/lab"
)

// TestDirectiveOrder checks that the in-process servers run the plugin chain of the real build:
// the directive list hack/build-coredns.sh generated from plugin.cfg, when there is a build.
func TestDirectiveOrder(t *testing.T) {
	i, rw, acl, cache := slices.Index(dnsserver.Directives, "raceguard"), slices.Index(dnsserver.Directives, "rewrite"),
		slices.Index(dnsserver.Directives, "acl"), slices.Index(dnsserver.Directives, "cache")
	if i < 0 || i+1 != rw || rw >= acl || acl >= cache {
		t.Errorf("Expected raceguard just before rewrite, before acl and cache; got %v", dnsserver.Directives)
	}
	if i := slices.Index(dnsserver.Directives, "collapse"); i < 1 || dnsserver.Directives[i-1] != "cache" {
		t.Errorf("Expected collapse just after cache; got %v", dnsserver.Directives)
	}
	// nodelocal makes the addresses at startup, before any plugin that binds them at its own.
	n := slices.Index(dnsserver.Directives, "nodelocal")
	if n < 1 || dnsserver.Directives[n-1] != "bind" {
		t.Errorf("Expected nodelocal just after bind; got %v", dnsserver.Directives)
	}
	for _, binder := range []string{"ready", "health", "pprof", "prometheus"} {
		if b := slices.Index(dnsserver.Directives, binder); b < n {
			t.Errorf("Expected nodelocal before %s, which binds its listener at startup; got %v", binder, dnsserver.Directives)
		}
	}

	root, err := lab.RepoPath(".build")
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := filepath.Glob(filepath.Join(root, "coredns-*", "core", "dnsserver", "zdirectives.go"))
	if len(gen) == 0 {
		t.Skip("No CoreDNS build to compare with (make coredns)")
	}
	src, err := os.ReadFile(gen[0])
	if err != nil {
		t.Fatal(err)
	}
	var built []string
	for _, m := range regexp.MustCompile(`(?m)^\s*"([a-z0-9_]+)",$`).FindAllStringSubmatch(string(src), -1) {
		built = append(built, m[1])
	}
	tests := slices.DeleteFunc(slices.Clone(dnsserver.Directives), func(d string) bool { return d == "labdelay" }) // test-only
	if !slices.Equal(built, tests) {
		t.Errorf("Directive order differs from the build's %s:\nbuild: %v\ntests: %v", gen[0], built, tests)
	}
}

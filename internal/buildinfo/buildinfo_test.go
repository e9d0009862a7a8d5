package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/coremain"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFromBuildInfo(t *testing.T) {
	dep := func(version string, replace *debug.Module) *debug.BuildInfo {
		return &debug.BuildInfo{
			Main: debug.Module{Path: "github.com/coredns/coredns", Version: "(devel)"},
			Deps: []*debug.Module{
				{Path: "github.com/miekg/dns", Version: "v1.1.73"},
				{Path: modulePath, Version: version, Replace: replace},
			},
		}
	}
	for _, tc := range []struct {
		name              string
		bi                *debug.BuildInfo
		version, revision string
	}{
		{"release", dep("v0.1.0", nil), "v0.1.0", ""},
		{"commit after a release", dep("v0.1.1-0.20261126123600-7e598a18e4d9", nil), "v0.1.1-0.20261126123600-7e598a18e4d9", "7e598a18e4d9"},
		{"commit before any release", dep("v0.0.0-20261126123600-7e598a18e4d9", nil), "v0.0.0-20261126123600-7e598a18e4d9", "7e598a18e4d9"},
		{"commit after a pre-release", dep("v0.2.0-rc.1.0.20261126123600-7e598a18e4d9", nil), "v0.2.0-rc.1.0.20261126123600-7e598a18e4d9", "7e598a18e4d9"},
		{"replaced by a directory", dep("v0.0.0", &debug.Module{Path: "/src/raceguard"}), "", ""},
		{"replaced by a fork", dep("v0.1.0", &debug.Module{Path: "example.org/fork/raceguard", Version: "v0.1.0-fork.2"}), "v0.1.0-fork.2", ""},
		{"not in the binary", &debug.BuildInfo{Main: debug.Module{Path: "github.com/coredns/coredns"}}, "", ""},
		{"main module, unstamped", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, "", ""},
		{"main module, stamped from a dirty checkout", &debug.BuildInfo{
			Main:     debug.Module{Path: modulePath, Version: "v0.1.1-0.20261126123600-7e598a18e4d9+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "7e598a18e4d93ac1a8e6a4d3c1dbd1a2e3f4a5b6"}},
		}, "v0.1.1-0.20261126123600-7e598a18e4d9+dirty", "7e598a18e4d9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, r := fromBuildInfo(tc.bi)
			if v != tc.version || r != tc.revision {
				t.Errorf("Expected version %q and revision %q, got %q and %q", tc.version, tc.revision, v, r)
			}
		})
	}
}

// TestInit checks what init set up in this test binary: coredns -version's string and the gauge.
func TestInit(t *testing.T) {
	if Version() == "" {
		t.Fatal("Expected a version, got none")
	}
	if want := coremain.CoreVersion + "+raceguard-" + Version(); caddy.AppVersion != want {
		t.Errorf("Expected caddy.AppVersion %q, got %q", want, caddy.AppVersion)
	}
	if strings.Count(caddy.AppVersion, "+raceguard-") != 1 {
		t.Errorf("Expected raceguard's version once in %q", caddy.AppVersion)
	}
	if n := testutil.CollectAndCount(buildInfo); n != 1 {
		t.Errorf("Expected one coredns_raceguard_build_info series, got %d", n)
	}
	if v := testutil.ToFloat64(buildInfo.WithLabelValues(Version(), Revision(), runtime.Version())); v != 1 {
		t.Errorf("Expected coredns_raceguard_build_info 1 for this build's labels, got %v", v)
	}
	problems, err := testutil.CollectAndLint(buildInfo)
	if err != nil || len(problems) > 0 {
		t.Errorf("Lint: %v %v", err, problems)
	}
}

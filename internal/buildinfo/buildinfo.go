package buildinfo

import (
	"regexp"
	"runtime"
	"runtime/debug"

	"github.com/coredns/caddy"
	_ "github.com/coredns/coredns/coremain" // its init sets caddy.AppVersion, which init below extends
)

// modulePath is the module whose version a binary reports.
const modulePath = "github.com/raceguard/raceguard"

// version and revision are raceguard's version and commit. A build that replaces the module with
// a directory may set them at link time (-X); otherwise init reads them from the build
// information.
var version, revision string

func init() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v, r := fromBuildInfo(bi)
		if version == "" {
			version, revision = v, r
		}
	}
	if version == "" {
		version = "devel"
	}
	caddy.AppVersion += "+raceguard-" + version
	buildInfo.WithLabelValues(version, revision, runtime.Version()).Set(1)
}

// Version returns raceguard's version: a module version (v0.1.0, or a pseudo-version such as
// v0.1.1-0.20261126123600-7e598a18e4d9), a version set at link time, or "devel".
func Version() string { return version }

// Revision returns the commit raceguard was built from, abbreviated to 12 digits as in
// pseudo-versions, or "" when the version does not name one (a release tag names its commit).
func Revision() string { return revision }

// pseudoRevision matches the commit at the end of a pseudo-version, before any build suffix
// (+dirty, +incompatible).
var pseudoRevision = regexp.MustCompile(`\d{14}-([0-9a-f]{12})(\+[0-9A-Za-z.-]+)?$`)

// fromBuildInfo returns raceguard's version and revision as bi records them: the version of the
// dependency, or of its replacement when that is a module rather than a directory; or, when
// raceguard is the main module (a binary built in this repository), the version the go command
// stamped from the checkout, if it did. The revision is the commit a pseudo-version names, or
// the checkout's commit for a main module.
func fromBuildInfo(bi *debug.BuildInfo) (version, revision string) {
	m := &bi.Main
	if m.Path != modulePath {
		m = nil
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				m = d
			}
		}
		if m == nil {
			return "", ""
		}
		if m.Replace != nil {
			m = m.Replace // a directory has no version: ""
		}
	}
	version = m.Version
	if version == "(devel)" {
		version = ""
	}
	if sm := pseudoRevision.FindStringSubmatch(version); sm != nil {
		revision = sm[1]
	}
	if m == &bi.Main {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				revision = s.Value[:12]
			}
		}
	}
	return version, revision
}

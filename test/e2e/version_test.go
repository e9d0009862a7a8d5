package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/coredns/coremain"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestVersion checks that the built binary's `coredns -version` names CoreDNS's version and
// raceguard's: the checkout's version (hack/version.sh: `git describe`), which
// hack/build-coredns.sh stamps because its replace directive leaves the build information
// without a version for raceguard.
func TestVersion(t *testing.T) {
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), bin, "-version").Output()
	if err != nil {
		t.Fatalf("%s -version: %v", bin, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	prefix := "CoreDNS-" + coremain.CoreVersion + "+raceguard-"
	if !strings.HasPrefix(first, prefix) || len(first) == len(prefix) {
		t.Fatalf("Expected %s<version>, got %q", prefix, first)
	}
	root, err := lab.RepoPath("")
	if err != nil {
		t.Fatal(err)
	}
	describe, err := exec.CommandContext(t.Context(), filepath.Join(root, "hack", "version.sh")).Output()
	if err != nil {
		t.Fatalf("hack/version.sh: %v", err)
	}
	if want := prefix + strings.TrimSpace(string(describe)); first != want {
		t.Errorf("Expected %q (the checkout), got %q: is RACEGUARD_COREDNS stale?", want, first)
	}
}

package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Isolated re-runs the calling test alone in a child process: the kubernetes plugin installs a
// process-global klog logger and informers that outlive a server, so a second startup in one
// process races with the first (CoreDNS's own test/kubernetes_autopath_cache_test.go does the
// same). It returns true in the child, which runs the test.
func Isolated(t *testing.T) bool {
	t.Helper()
	const env = "RACEGUARD_ISOLATED_TEST"
	if os.Getenv(env) == t.Name() {
		return true
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+strings.ReplaceAll(t.Name(), "/", "$/^")+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Isolated test failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("Isolated test did not pass:\n%s", out)
	}
	return false
}

package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Tool returns the path of the program name, which the Debian package pkg installs. Without it
// t is skipped, unless RACEGUARD_LAB=require (`make test` as root, and CI, which installs every
// package the tests need), where t fails instead.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("RACEGUARD_LAB") == "require" {
		t.Fatalf("RACEGUARD_LAB=require: %s not found (apt-get install %s)", name, pkg)
	}
	t.Skipf("Skipping: %s not found (apt-get install %s)", name, pkg)
	return ""
}

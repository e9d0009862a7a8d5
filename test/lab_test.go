package test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
)

var (
	corednsOnce sync.Once
	corednsBin  string
	corednsErr  error
)

// corednsBinary returns the custom CoreDNS the lab's DNS servers run: $RACEGUARD_COREDNS (set by
// `make test`), else ./coredns rebuilt once per test run by hack/build-coredns.sh, so a plain
// `go test` never runs a stale binary.
func corednsBinary() (string, error) {
	corednsOnce.Do(func() {
		if corednsBin = os.Getenv("RACEGUARD_COREDNS"); corednsBin != "" {
			return
		}
		script, err := lab.RepoPath("hack/build-coredns.sh")
		if err != nil {
			corednsErr = err
			return
		}
		if out, err := exec.Command(script).CombinedOutput(); err != nil {
			corednsErr = errors.New("hack/build-coredns.sh: " + err.Error() + ": " + string(out))
			return
		}
		corednsBin, corednsErr = lab.RepoPath("coredns")
	})
	return corednsBin, corednsErr
}

// newLab builds a lab for t and removes it when t ends. Without root or the lab's tools it skips,
// unless RACEGUARD_LAB=require (set by `make test` when run as root), where it fails instead.
func newLab(t *testing.T) *lab.Lab {
	t.Helper()
	if err := lab.Available(); err != nil {
		if os.Getenv("RACEGUARD_LAB") == "require" {
			t.Fatalf("RACEGUARD_LAB=require: %v", err)
		}
		t.Skipf("Skipping lab test: %v", err)
	}
	bin, err := corednsBinary()
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.New(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// startDNS starts both lab DNS servers on corefile, failing t with their logs if they do not come up.
func startDNS(t *testing.T, l *lab.Lab, corefile string) {
	t.Helper()
	if err := l.StartDNS(corefile); err != nil {
		t.Fatal(err)
	}
}

func lookupOne(t *testing.T, l *lab.Lab, libc lab.Libc, family lab.Family, rc lab.ResolvConf, name string) lab.Result {
	t.Helper()
	rs, err := l.Lookup(libc, family, rc, 1, name)
	if err != nil {
		t.Fatal(err)
	}
	return rs[0]
}

func joined(s ...string) string { return strings.Join(s, ",") }

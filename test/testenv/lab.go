package testenv

import (
	"os"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
)

// NewLab builds a lab for t and removes it when t ends. Without root or the lab's tools it skips,
// unless RACEGUARD_LAB=require (set by `make test` when run as root), where it fails instead.
func NewLab(t *testing.T) *lab.Lab {
	t.Helper()
	if err := lab.Available(); err != nil {
		if os.Getenv("RACEGUARD_LAB") == "require" {
			t.Fatalf("RACEGUARD_LAB=require: %v", err)
		}
		t.Skipf("Skipping lab test: %v", err)
	}
	bin, err := CoreDNSBinary()
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

// StartDNS starts both lab DNS servers on corefile, failing t with their logs if they do not
// come up.
func StartDNS(t *testing.T, l *lab.Lab, corefile string) {
	t.Helper()
	if err := l.StartDNS(corefile); err != nil {
		t.Fatal(err)
	}
}

// LookupOne looks name up once in the lab's client with libc, family and resolv.conf rc.
func LookupOne(t *testing.T, l *lab.Lab, libc lab.Libc, family lab.Family, rc lab.ResolvConf, name string) lab.Result {
	t.Helper()
	rs, err := l.Lookup(libc, family, rc, 1, name)
	if err != nil {
		t.Fatal(err)
	}
	return rs[0]
}

// Joined is the addresses s as a lab.Result prints them: joined by commas.
func Joined(s ...string) string { return strings.Join(s, ",") }

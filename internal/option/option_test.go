package option

import (
	"reflect"
	"testing"
	"time"
)

func TestDomain(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Cluster.Local", "cluster.local.", true},
		{"svc.cluster.local.", "svc.cluster.local.", true},
		{"_tcp.example.org", "_tcp.example.org.", true},
		{"xn--bcher-kva.example", "xn--bcher-kva.example.", true},
		{".", "", false},
		{"", "", false},
		{"a..b", "", false},
		{"bad!name", "", false},
		{"with/slash", "", false},
		{"@kubernetes", "", false},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org", "", false}, // a 64-byte label
	} {
		got, err := Domain("opt", tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Domain(%q): Expected %q (ok %v), got %q, %v", tc.in, tc.want, tc.ok, got, err)
		}
	}
}

func TestValues(t *testing.T) {
	if n, err := Int("n", []string{"7"}, 1, 10); n != 7 || err != nil {
		t.Errorf("Int: Expected 7, got %d, %v", n, err)
	}
	if _, err := Int("n", []string{"11"}, 1, 10); err == nil || err.Error() != `n: invalid value "11": want an integer from 1 to 10` {
		t.Errorf("Int: Expected a range error, got %v", err)
	}
	if d, err := Duration("d", []string{"1.5s"}, time.Second, time.Minute); d != 1500*time.Millisecond || err != nil {
		t.Errorf("Duration: Expected 1.5s, got %s, %v", d, err)
	}
	if b, err := Bool("b", []string{"off"}); b || err != nil {
		t.Errorf("Bool: Expected false, got %v, %v", b, err)
	}
	if _, err := Bool("b", nil); err == nil || err.Error() != "b: missing value" {
		t.Errorf("Bool: Expected a missing value error, got %v", err)
	}
	seen := map[string]bool{}
	if err := Once(seen, "x"); err != nil {
		t.Errorf("Once: Expected no error the first time, got %v", err)
	}
	if err := Once(seen, "x"); err == nil || err.Error() != "x: given more than once" {
		t.Errorf("Once: Expected an error the second time, got %v", err)
	}
}

func TestZones(t *testing.T) {
	got, err := Zones("d", []string{"Example.ORG", "10.0.0.0/8", "."})
	want := []string{"example.org.", "10.in-addr.arpa.", "."}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Zones: Expected %v, got %v, %v", want, got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "foo/8", "exa mple", "a..b"} {
		if _, err := Zones("d", []string{bad}); err == nil {
			t.Errorf("Zones: Expected an error for %q", bad)
		}
	}
}

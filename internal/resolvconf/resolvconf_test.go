package resolvconf

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestWatcherFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	write := func(s string) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("nameserver 10.0.0.1\nsearch Corp.Example.com lab.internal\n")
	n := NewFile(path)
	n.interval = 10 * time.Millisecond
	if want := []string{"corp.example.com.", "lab.internal."}; !reflect.DeepEqual(n.Domains(), want) {
		t.Fatalf("Expected %v, got %v", want, n.Domains())
	}
	n.Start()
	defer n.Stop()

	waitFor := func(want []string) {
		t.Helper()
		for range 200 {
			if reflect.DeepEqual(n.Domains(), want) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("Expected %v after the change, got %v", want, n.Domains())
	}
	write("nameserver 10.0.0.1\nsearch other.example\n")
	waitFor([]string{"other.example."})
	os.Remove(path)
	waitFor(nil)
	write("search back.example\n")
	waitFor([]string{"back.example."})
}

func TestReadSearch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver 10.0.0.1\nsearch Corp.Example.com . lab_internal! corp.example.com. lab.internal\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSearch(path)
	if want := []string{"corp.example.com.", "lab.internal."}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Expected %v (no root, no typo, no repeat), got %v, %v", want, got, err)
	}
	if _, err := ReadSearch(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Expected an error for a missing file")
	}
}

// TestWatcherReadsAsTheKubelet: the node's domains are those the kubelet appends to a pod's
// list: its last search line, never a domain line (which a resolver would read).
func TestWatcherReadsAsTheKubelet(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"nameserver 10.0.0.1\ndomain corp.example\n", nil},
		{"search a.example b.example\nsearch C.example\n", []string{"c.example."}},
		{"domain corp.example\nsearch lab.internal\n", []string{"lab.internal."}},
	} {
		path := filepath.Join(t.TempDir(), "resolv.conf")
		if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := NewFile(path).Domains(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: Expected %v, got %v", tc.file, tc.want, got)
		}
	}
}

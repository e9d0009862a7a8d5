package resolvconf

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// replace writes s to path by a rename over it, as editors and ConfigMap updates do.
func replace(t *testing.T, path, s string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestWatcherVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	replace(t, path, "nameserver 10.0.0.1\nsearch corp.example\n")
	clock := time.Unix(1000, 0)
	n := &Watcher{path: path, interval: time.Hour, now: func() time.Time { return clock }}
	n.Check()
	v1 := n.Version()
	if v1.Conf == nil || !reflect.DeepEqual(v1.Conf.Searches, []string{"corp.example"}) || !v1.Since.IsZero() {
		t.Fatalf("Expected the first version with corp.example and no change window, got %+v", v1)
	}

	clock = clock.Add(2 * time.Second)
	n.Check() // unchanged: same version, a later sighting
	clock = clock.Add(2 * time.Second)
	replace(t, path, "nameserver 10.0.0.1\nsearch corp.example\n")
	n.Check() // rewritten with the same content: same version
	if n.Version() != v1 || closed(v1.Replaced()) {
		t.Fatal("Expected an unchanged content to keep its version")
	}

	clock = clock.Add(2 * time.Second)
	replace(t, path, "nameserver 10.0.0.1\nsearch lab.example\n")
	n.Check()
	v2 := n.Version()
	if v2 == v1 || !closed(v1.Replaced()) || closed(v2.Replaced()) {
		t.Fatal("Expected a new version, the old one's channel closed")
	}
	if want := []string{"lab.example"}; !reflect.DeepEqual(v2.Conf.Searches, want) {
		t.Errorf("Expected %v, got %v", want, v2.Conf.Searches)
	}
	if !v2.Since.Equal(time.Unix(1006, 0)) || !v2.Before.Equal(time.Unix(1004, 0)) {
		t.Errorf("Expected the change between the last sighting of the old content (1004) and the first of the new (1006), got %v..%v", v2.Before.Unix(), v2.Since.Unix())
	}
	if want := []string{"lab.example."}; !reflect.DeepEqual(n.Domains(), want) {
		t.Errorf("Expected the domains to follow, %v, got %v", want, n.Domains())
	}

	clock = clock.Add(2 * time.Second)
	os.Remove(path)
	n.Check()
	v3 := n.Version()
	if v3.Conf != nil || v3.Err == nil || !closed(v2.Replaced()) {
		t.Errorf("Expected a missing file to be a version without a configuration, got %+v", v3)
	}
	clock = clock.Add(2 * time.Second)
	n.Check()
	if n.Version() != v3 {
		t.Error("Expected a file still missing to keep its version")
	}

	clock = clock.Add(2 * time.Second)
	replace(t, path, "nameserver\nsearch lab.example\n")
	n.Check()
	if v4 := n.Version(); v4 == v3 || v4.Conf != nil || v4.Err == nil {
		t.Errorf("Expected a file the kubelet cannot parse to be a version without a configuration, got %+v", v4)
	}
}

func TestListedVersion(t *testing.T) {
	n := New([]string{"corp.example.", "lab.example."})
	v := n.Version()
	if want := []string{"corp.example", "lab.example"}; v.Conf == nil || !reflect.DeepEqual(v.Conf.Searches, want) {
		t.Errorf("Expected the listed domains as the kubelet reads them, %v, got %+v", want, v.Conf)
	}
	n.Check()
	if n.Version() != v || closed(v.Replaced()) || !v.Since.IsZero() {
		t.Errorf("Expected one unchanging version, got %+v", n.Version())
	}
}

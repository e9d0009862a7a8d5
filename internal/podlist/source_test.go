package podlist

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/resolvconf"
	"github.com/raceguard/raceguard/test/kubeapi"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// node is the resolv.conf of the tests' node.
var node = resolvconf.New([]string{"Corp.Example"})

// defaultList is the list of a ClusterFirst pod in namespace ns on that node.
func defaultList(ns string) []string {
	return []string{ns + ".svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "corp.example."}
}

// mkPod is a running ClusterFirst pod on a node with the addresses ips.
func mkPod(ns, name, node string, ips ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{NodeName: node, DNSPolicy: corev1.DNSClusterFirst,
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Env: []corev1.EnvVar{{Name: "SECRET", Value: "hunter2"}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, ip := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		p.Status.PodIP = ips[0]
	}
	return p
}

// serveAPI runs the fake API server on loopback with pods until the test ends.
func serveAPI(t testing.TB, pods ...*corev1.Pod) *kubeapi.API {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := kubeapi.Serve(ln, kubeapi.Cluster{PodObjects: pods})
	t.Cleanup(api.Close)
	return api
}

// startSource starts a Source on api, retrying failed lists and watches within 50 ms, until the
// test ends. adjust, if any, changes it before it starts.
func startSource(t testing.TB, api *kubeapi.API, cfg Config, adjust ...func(*Source)) *Source {
	t.Helper()
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.Host == nil {
		cfg.Host = node
	}
	s, err := newSource(&rest.Config{Host: api.URL}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.backoff = &wait.Backoff{Duration: 10 * time.Millisecond, Cap: 50 * time.Millisecond, Steps: 10, Factor: 2}
	for _, f := range adjust {
		f(s)
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("Timed out waiting for %s", what)
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// expect checks what an address answers now.
func expect(t *testing.T, s *Source, a string, state State, search []string) {
	t.Helper()
	l, st := s.Lookup(addr(a))
	if st != state {
		t.Errorf("%s: Expected %v, got %v (%+v)", a, state, st, l)
		return
	}
	if state == Known && (l == nil || !reflect.DeepEqual(l.Search, search)) {
		t.Errorf("%s: Expected %v, got %+v", a, search, l)
	}
}

// answers waits until an address answers state.
func answers(t *testing.T, s *Source, a string, state State) {
	t.Helper()
	waitFor(t, a+" to answer "+state.String(), func() bool { _, st := s.Lookup(addr(a)); return st == state })
}

func TestLookup(t *testing.T) {
	for _, mode := range []string{"watch-list", "list"} {
		t.Run(mode, func(t *testing.T) {
			custom := mkPod("shop", "custom", "node-a", "10.244.1.12")
			custom.Spec.DNSPolicy = corev1.DNSNone
			custom.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.96.0.10"}, Searches: []string{"Shop.Example", "corp.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}}}
			override := mkPod("shop", "override", "node-a", "10.244.1.13")
			override.Spec.Containers[0].Env = append(override.Spec.Containers[0].Env, corev1.EnvVar{Name: "RES_OPTIONS", Value: "ndots:1"})
			proxy := mkPod("kube-system", "kube-proxy-a", "node-a", "192.0.2.1")
			proxy.Spec.HostNetwork = true
			api := serveAPI(t,
				mkPod("shop", "api-0", "node-a", "10.244.1.10", "fd00:244:1::10"),
				mkPod("shop", "api-1", "node-a", "10.244.1.11"),
				mkPod("default", "web-0", "node-a", "10.244.1.20"),
				mkPod("shop", "api-2", "node-b", "10.244.2.10"),
				custom, override, proxy)
			if mode == "list" {
				api.RefuseWatchList()
			}
			s := startSource(t, api, Config{Node: "node-a"})
			waitFor(t, "the first sync", s.Ready)

			expect(t, s, "10.244.1.10", Known, defaultList("shop"))
			expect(t, s, "fd00:244:1::10", Known, defaultList("shop"))
			expect(t, s, "::ffff:10.244.1.10", Known, defaultList("shop"))
			expect(t, s, "10.244.1.20", Known, defaultList("default"))
			expect(t, s, "10.244.1.12", Known, []string{"shop.example.", "corp.example."})
			expect(t, s, "10.244.1.13", Ambiguous, nil)
			expect(t, s, "192.0.2.1", Shared, nil)  // the node's own address
			expect(t, s, "10.244.2.10", NoPod, nil) // another node's pod: not watched
			expect(t, s, "10.244.1.99", NoPod, nil) // nobody's
			expect(t, s, "127.0.0.1", NoPod, nil)   // nobody's
			if l, _ := s.Lookup(addr("10.244.1.12")); l.NDots != 2 {
				t.Errorf("Expected ndots 2 from the pod's dnsConfig, got %d", l.NDots)
			}
			if l, _ := s.Lookup(addr("10.244.1.10")); l.NDots != 5 {
				t.Errorf("Expected the kubelet's ndots 5, got %d", l.NDots)
			}
			a, _ := s.Lookup(addr("10.244.1.10"))
			b, _ := s.Lookup(addr("10.244.1.11"))
			if a != b {
				t.Error("Expected two pods with one list to share it")
			}
			for _, sel := range api.PodSelectors() {
				if !strings.HasPrefix(sel, "spec.nodeName=node-a,") || !strings.Contains(sel, "status.phase!=Succeeded") {
					t.Errorf("Expected every request limited to node-a's live pods, got %q", sel)
				}
			}
			if got := (sized{s}).Live(); got != 6 {
				t.Errorf("Expected 6 pods held, got %d", got)
			}
		})
	}
}

func TestClusterMode(t *testing.T) {
	api := serveAPI(t, mkPod("shop", "api-0", "node-a", "10.244.1.10"), mkPod("shop", "api-2", "node-b", "10.244.2.10"))
	s := startSource(t, api, Config{})
	waitFor(t, "the first sync", s.Ready)
	// Every node's pods, each with the node resolv.conf the operator stated.
	expect(t, s, "10.244.1.10", Known, defaultList("shop"))
	expect(t, s, "10.244.2.10", Known, defaultList("shop"))
	if sel := api.PodSelectors()[0]; strings.Contains(sel, "nodeName") {
		t.Errorf("Expected no node in cluster mode's selector, got %q", sel)
	}
	if s.capacity != DefaultClusterCapacity {
		t.Errorf("Expected cluster mode's default capacity, got %d", s.capacity)
	}
}

func TestEvents(t *testing.T) {
	api := serveAPI(t)
	s := startSource(t, api, Config{Node: "node-a"})
	waitFor(t, "the first sync", s.Ready)

	// Scheduled, then given its address.
	p := mkPod("shop", "api-0", "node-a")
	p.Status.Phase = corev1.PodPending
	api.PutPod(p)
	p = mkPod("shop", "api-0", "node-a", "10.244.1.10")
	api.PutPod(p)
	answers(t, s, "10.244.1.10", Known)
	expect(t, s, "10.244.1.10", Known, defaultList("shop"))

	// Terminating: it gives up its address at once.
	p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	api.PutPod(p)
	answers(t, s, "10.244.1.10", NoPod)
	api.DeletePod("shop", "api-0")

	// Completed: it leaves the selector (a DELETED event) and its address with it.
	q := mkPod("batch", "job-1", "node-a", "10.244.1.30")
	api.PutPod(q)
	answers(t, s, "10.244.1.30", Known)
	q.Status.Phase = corev1.PodSucceeded
	api.PutPod(q)
	answers(t, s, "10.244.1.30", NoPod)

	// Moved to another node (a test's liberty): it leaves this node's watch.
	r := mkPod("shop", "api-9", "node-a", "10.244.1.40")
	api.PutPod(r)
	answers(t, s, "10.244.1.40", Known)
	r.Spec.NodeName = "node-b"
	api.PutPod(r)
	answers(t, s, "10.244.1.40", NoPod)
	waitFor(t, "the table to forget the pods gone", func() bool { return (sized{s}).Live() == 0 })
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lists) != 0 || len(s.namespaces) != 0 {
		t.Errorf("Expected no shared list or namespace left, got %d and %d", len(s.lists), len(s.namespaces))
	}
}

// TestAddressReuse: an address given to a new pod never answers with the old pod's list.
func TestAddressReuse(t *testing.T) {
	api := serveAPI(t)
	s := startSource(t, api, Config{Node: "node-a"})
	waitFor(t, "the first sync", s.Ready)

	// The API server hears of the new pod before the old one's end: both claim the address.
	api.PutPod(mkPod("shop", "old", "node-a", "10.244.1.10"))
	answers(t, s, "10.244.1.10", Known)
	api.PutPod(mkPod("monitoring", "new", "node-a", "10.244.1.10"))
	answers(t, s, "10.244.1.10", Shared)
	api.DeletePod("shop", "old")
	answers(t, s, "10.244.1.10", Known)
	expect(t, s, "10.244.1.10", Known, defaultList("monitoring"))

	// The old one terminating first: the new one answers as soon as it is heard of.
	old := mkPod("monitoring", "new", "node-a", "10.244.1.10")
	old.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	api.PutPod(old)
	answers(t, s, "10.244.1.10", NoPod)
	api.PutPod(mkPod("default", "newer", "node-a", "10.244.1.10"))
	answers(t, s, "10.244.1.10", Known)
	expect(t, s, "10.244.1.10", Known, defaultList("default"))
	api.DeletePod("monitoring", "new")

	// A host-network pod and a pod at one address (not in a real cluster): never one pod's list.
	hn := mkPod("kube-system", "agent", "node-a", "10.244.1.10")
	hn.Spec.HostNetwork = true
	api.PutPod(hn)
	answers(t, s, "10.244.1.10", Shared)
}

func TestUnknownUntilSyncedAndWhileLost(t *testing.T) {
	api := serveAPI(t, mkPod("shop", "api-0", "node-a", "10.244.1.10"))
	api.SetDown(true)
	unknown := testutil.ToFloat64(lookups[Unknown])
	losses := testutil.ToFloat64(lossCount)
	s := startSource(t, api, Config{Node: "node-a"})
	waitFor(t, "a failed list", func() bool { return len(api.PodSelectors()) >= 3 })
	if s.Ready() {
		t.Error("Expected no readiness before a sync")
	}
	expect(t, s, "10.244.1.10", Unknown, nil)
	if got := testutil.ToFloat64(lookups[Unknown]) - unknown; got != 1 {
		t.Errorf("Expected the unknown lookup counted, got %v", got)
	}
	if got := testutil.ToFloat64(lossCount) - losses; got != 1 {
		t.Errorf("Expected one loss counted for several failed lists, got %v", got)
	}

	api.SetDown(false)
	waitFor(t, "the first sync", s.Ready)
	expect(t, s, "10.244.1.10", Known, defaultList("shop"))

	// Lost: the watch ends, lists fail. Unknown until it is back, with what changed meanwhile.
	losses = testutil.ToFloat64(lossCount)
	api.SetDown(true)
	waitFor(t, "the loss", func() bool { return testutil.ToFloat64(lossCount) > losses })
	expect(t, s, "10.244.1.10", Unknown, nil)
	if !s.Ready() {
		t.Error("Expected readiness to stay once synced")
	}
	api.SetDown(false)
	api.DeletePod("shop", "api-0")
	api.PutPod(mkPod("shop", "api-1", "node-a", "10.244.1.11"))
	answers(t, s, "10.244.1.11", Known)
	expect(t, s, "10.244.1.10", NoPod, nil)
	if got := testutil.ToFloat64(lossCount) - losses; got != 1 {
		t.Errorf("Expected one loss counted, got %v", got)
	}

	// Expired: the server ends the watch with 410; a relist resumes it.
	losses = testutil.ToFloat64(lossCount)
	api.Expire()
	api.PutPod(mkPod("shop", "api-2", "node-a", "10.244.1.12"))
	answers(t, s, "10.244.1.12", Known)
	expect(t, s, "10.244.1.11", Known, defaultList("shop"))
	if got := testutil.ToFloat64(lossCount) - losses; got != 1 {
		t.Errorf("Expected the expired watch counted as a loss, got %v", got)
	}
}

func TestStopped(t *testing.T) {
	api := serveAPI(t, mkPod("shop", "api-0", "node-a", "10.244.1.10"))
	s := startSource(t, api, Config{Node: "node-a"})
	waitFor(t, "the first sync", s.Ready)
	s.Stop()
	expect(t, s, "10.244.1.10", Unknown, nil)
	if s.Ready() {
		t.Error("Expected a stopped Source not ready")
	}
	s.Stop() // a second Stop is a no-op
}

func TestOverflow(t *testing.T) {
	api := serveAPI(t,
		mkPod("shop", "a", "node-a", "10.244.1.1"), mkPod("shop", "b", "node-a", "10.244.1.2"),
		mkPod("shop", "c", "node-a", "10.244.1.3"), mkPod("shop", "d", "node-a", "10.244.1.4"))
	over := testutil.ToFloat64(bounded.Overflows(table))
	s := startSource(t, api, Config{Node: "node-a", Capacity: 3})
	waitFor(t, "the first sync", s.Ready)
	// Four pods, three places: a pod not held may hold any address, so none answers.
	for _, a := range []string{"10.244.1.1", "10.244.1.2", "10.244.1.3", "10.244.1.4"} {
		expect(t, s, a, Unknown, nil)
	}
	if got := testutil.ToFloat64(bounded.Overflows(table)) - over; got != 1 {
		t.Errorf("Expected one pod refused, got %v", got)
	}
	// Back to three: whichever was refused, a relist holds them all.
	api.DeletePod("shop", "b")
	answers(t, s, "10.244.1.1", Known)
	for _, a := range []string{"10.244.1.3", "10.244.1.4"} {
		expect(t, s, a, Known, defaultList("shop"))
	}
	expect(t, s, "10.244.1.2", NoPod, nil)
}

// TestNodeResolvConfChange: a pod keeps the list of the node resolv.conf its sandbox was made
// from.
func TestNodeResolvConfChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nameserver 10.0.0.2\nsearch old.example\n")
	file := resolvconf.NewFile(path) // not started: read by Check only
	api := serveAPI(t, mkPod("shop", "before", "node-a", "10.244.1.10"))
	s := startSource(t, api, Config{Node: "node-a", Host: file})
	waitFor(t, "the first sync", s.Ready)
	file.Check() // the old content, seen after the first pod got its address

	api.PutPod(mkPod("shop", "around", "node-a", "10.244.1.11")) // after the last sighting of the old content
	answers(t, s, "10.244.1.11", Known)
	v := file.Version()
	write("nameserver 10.0.0.2\nsearch new.example\n")
	file.Check()
	<-v.Replaced()
	answers(t, s, "10.244.1.11", Ambiguous) // its sandbox may have read either
	old := []string{"shop.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "old.example."}
	expect(t, s, "10.244.1.10", Known, old)

	api.PutPod(mkPod("shop", "soon", "node-a", "10.244.1.12")) // within the settling time
	answers(t, s, "10.244.1.12", Ambiguous)

	s.mu.Lock()
	s.settle = 0
	s.mu.Unlock()
	api.PutPod(mkPod("shop", "after", "node-a", "10.244.1.13"))
	answers(t, s, "10.244.1.13", Known)
	expect(t, s, "10.244.1.13", Known, []string{"shop.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "new.example."})
	expect(t, s, "10.244.1.10", Known, old)

	os.Remove(path)
	file.Check()
	api.PutPod(mkPod("shop", "unreadable", "node-a", "10.244.1.14"))
	answers(t, s, "10.244.1.14", Ambiguous)
}

func TestNew(t *testing.T) {
	api := serveAPI(t)
	kc, err := api.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		cfg                Config
		shouldErr          bool
		expectedErrContent string
	}{
		// positive
		{cfg: Config{Kubeconfig: kc, ClusterDomain: "cluster.local", Host: node}},
		{cfg: Config{Kubeconfig: kc, ClusterDomain: "Cluster.Local.", Host: node, Node: "node-a", Capacity: 10}},
		// negative
		{cfg: Config{Kubeconfig: kc, Host: node}, shouldErr: true, expectedErrContent: `cluster domain ""`},
		{cfg: Config{Kubeconfig: kc, ClusterDomain: "cluster local", Host: node}, shouldErr: true, expectedErrContent: "not a domain name"},
		{cfg: Config{Kubeconfig: kc, ClusterDomain: "cluster.local"}, shouldErr: true, expectedErrContent: "no node resolv.conf"},
		{cfg: Config{Kubeconfig: kc, ClusterDomain: "cluster.local", Host: node, Capacity: -1}, shouldErr: true, expectedErrContent: "negative"},
		{cfg: Config{Kubeconfig: filepath.Join(t.TempDir(), "missing"), ClusterDomain: "cluster.local", Host: node}, shouldErr: true, expectedErrContent: "missing"},
	} {
		s, err := New(tc.cfg)
		if tc.shouldErr {
			if err == nil || !strings.Contains(err.Error(), tc.expectedErrContent) {
				t.Errorf("Test %d: Expected an error with %q, got %v", i, tc.expectedErrContent, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Test %d: Expected no error, got %v", i, err)
			continue
		}
		s.Start()
		waitFor(t, "the first sync", s.Ready)
		s.Stop()
	}
}

func TestLookupAllocs(t *testing.T) {
	api := serveAPI(t, mkPod("shop", "api-0", "node-a", "10.244.1.10"))
	s := startSource(t, api, Config{Node: "node-a"})
	waitFor(t, "the first sync", s.Ready)
	for _, a := range []string{"10.244.1.10", "10.244.1.99", "::ffff:10.244.1.10"} {
		ip := addr(a)
		if n := testing.AllocsPerRun(1000, func() { s.Lookup(ip) }); n != 0 {
			t.Errorf("%s: Expected no allocation, got %v", a, n)
		}
	}
}

// TestConcurrent runs lookups while pods come and go, for the race detector.
func TestConcurrent(t *testing.T) {
	api := serveAPI(t)
	s := startSource(t, api, Config{Node: "node-a"})
	waitFor(t, "the first sync", s.Ready)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for n := 0; n < 1_000_000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if l, st := s.Lookup(addr("10.244.1.10")); st == Known && l.Search[0] != "shop.svc.cluster.local." {
					t.Errorf("Expected shop's list, got %v", l.Search)
					return
				}
			}
		})
	}
	for range 50 {
		api.PutPod(mkPod("shop", "api-0", "node-a", "10.244.1.10"))
		answers(t, s, "10.244.1.10", Known)
		api.DeletePod("shop", "api-0")
		answers(t, s, "10.244.1.10", NoPod)
	}
	close(stop)
	wg.Wait()
}

// TestUnavailable: outside a pod (no service account token) and without a kubeconfig, the Source
// starts, never watches, answers Unknown, and says so in pod_watch_up.
func TestUnavailable(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	s, err := New(Config{ClusterDomain: "cluster.local", Host: resolvconf.New(nil)})
	if err != nil {
		t.Fatalf("Expected a Source that never watches, got %v", err)
	}
	s.Start()
	defer s.Stop()
	if _, st := s.Lookup(netip.MustParseAddr("10.244.0.1")); st != Unknown || s.Ready() {
		t.Errorf("Expected Unknown and not ready, got %v, ready %v", st, s.Ready())
	}
	if got := testutil.ToFloat64(upCollector{}); got != 0 {
		t.Errorf("Expected pod_watch_up 0, got %v", got)
	}
}

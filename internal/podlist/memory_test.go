package podlist

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// clusterPods makes n pods as a cluster has them: 100 namespaces, dual-stack addresses, names
// of a Deployment's pods, a few containers with environments (which the watch drops), one pod in
// ten with its own dnsConfig, one in fifty on the host network.
func clusterPods(n int) []*corev1.Pod {
	pods := make([]*corev1.Pod, 0, n)
	for i := range n {
		ns := fmt.Sprintf("team-%02d", i%100)
		v4 := netip.AddrFrom4([4]byte{10, byte(244 + i>>16), byte(i >> 8), byte(i)})
		v6 := netip.AddrFrom16([16]byte{0xfd, 0, 2, 0x44, 14: byte(i >> 8), 15: byte(i)})
		p := mkPod(ns, fmt.Sprintf("checkout-service-7d9f8b6c5d-%05d", i), fmt.Sprintf("node-%03d", i/110), v4.String(), v6.String())
		for c := range 3 {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
				Name: fmt.Sprintf("sidecar-%d", c), Image: "registry.example/sidecar:1.2.3",
				Env: []corev1.EnvVar{{Name: "CONFIG", Value: fmt.Sprintf("%0200d", i)}},
			})
		}
		switch {
		case i%10 == 0:
			p.Spec.DNSConfig = &corev1.PodDNSConfig{
				Searches: []string{fmt.Sprintf("svc-%d.example", i%37)},
				Options:  []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}},
			}
		case i%50 == 1:
			p.Spec.HostNetwork = true
			p.Status.PodIPs = []corev1.PodIP{{IP: fmt.Sprintf("192.0.2.%d", i/110%250)}}
		}
		pods = append(pods, p)
	}
	return pods
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// measure loads n pods through the fake API over HTTP into a cluster-mode Source and returns
// the live heap it holds once synced (the heap with it, less the heap before it, the API's own
// pods in both) and the bytes allocated while it synced.
func measure(tb testing.TB, n int) (held, allocated uint64) {
	api := serveAPI(tb, clusterPods(n)...)
	before := liveHeap()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	s := startSource(tb, api, Config{Capacity: 2 * n})
	for deadline := time.Now().Add(2 * time.Minute); !s.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("Timed out waiting for %d pods", n)
		}
	}
	runtime.ReadMemStats(&m1)
	after := liveHeap()
	if got := (sized{s}).Live(); got != n {
		tb.Fatalf("Expected %d pods held, got %d", n, got)
	}
	if _, st := s.Lookup(netip.AddrFrom4([4]byte{10, 244, 0, 2})); st != Known {
		tb.Fatalf("Expected a pod's list known, got %v", st)
	}
	runtime.KeepAlive(s)
	return after - before, m1.TotalAlloc - m0.TotalAlloc
}

// TestMemoryPer10000Pods measures the Source's memory for 10,000 pods loaded through a real
// HTTP API, and holds it under a bound: 10 MB, about three times what it measured when written.
func TestMemoryPer10000Pods(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 10,000 pods")
	}
	held, allocated := measure(t, 10000)
	t.Logf("10,000 pods: %d bytes held (%d a pod), %d bytes allocated while syncing", held, held/10000, allocated)
	if held > 10<<20 {
		t.Errorf("Expected at most 10 MB held for 10,000 pods, got %d bytes", held)
	}
}

// BenchmarkSync10000Pods reports the time to list 10,000 pods over HTTP and the bytes held.
func BenchmarkSync10000Pods(b *testing.B) {
	var held uint64
	for b.Loop() {
		h, _ := measure(b, 10000)
		held = h
	}
	b.ReportMetric(float64(held), "bytes-held/10k-pods")
}

func BenchmarkLookup(b *testing.B) {
	api := serveAPI(b, clusterPods(1000)...)
	s := startSource(b, api, Config{})
	for !s.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	addrs := make([]netip.Addr, 256)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, 244, 0, byte(i)})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Lookup(addrs[i&255])
			i++
		}
	})
}

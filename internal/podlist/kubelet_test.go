package podlist

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/internal/resolvconf"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

// TestPodDNS is a table of the kubelet's policies, from GetPodDNS (v1.34): what each dnsPolicy,
// hostNetwork and dnsConfig make of the node's resolv.conf, and the limits after.
func TestPodDNS(t *testing.T) {
	node := &resolvconf.Conf{
		Nameservers: []string{"10.0.0.2"},
		Searches:    []string{"corp.example", "lab.example"},
		Options:     []string{"ndots:2", "timeout:1"},
	}
	kubelet := Kubelet{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}, ResolvConf: node}
	cluster := []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lab.example"}
	custom := &corev1.PodDNSConfig{
		Nameservers: []string{"192.0.2.53"},
		Searches:    []string{"my.example", "svc.cluster.local", "Corp.Example."},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("3")}, {Name: "debug"}},
	}
	long := func(n int, c byte) string { return strings.Repeat(string(c), n) }

	for _, tc := range []struct {
		name        string
		kubelet     *Kubelet // nil for kubelet
		policy      corev1.DNSPolicy
		hostNetwork bool
		dnsConfig   *corev1.PodDNSConfig
		want        resolvconf.Conf
	}{
		{name: "ClusterFirst", policy: corev1.DNSClusterFirst,
			want: resolvconf.Conf{Nameservers: []string{"10.96.0.10"}, Searches: cluster, Options: []string{"ndots:5"}}},
		{name: "ClusterFirst on the host network is Default", policy: corev1.DNSClusterFirst, hostNetwork: true,
			want: resolvconf.Conf{Nameservers: []string{"10.0.0.2"}, Searches: []string{"corp.example", "lab.example"}, Options: []string{"ndots:2", "timeout:1"}}},
		{name: "ClusterFirstWithHostNet on the host network", policy: corev1.DNSClusterFirstWithHostNet, hostNetwork: true,
			want: resolvconf.Conf{Nameservers: []string{"10.96.0.10"}, Searches: cluster, Options: []string{"ndots:5"}}},
		{name: "ClusterFirstWithHostNet off it", policy: corev1.DNSClusterFirstWithHostNet,
			want: resolvconf.Conf{Nameservers: []string{"10.96.0.10"}, Searches: cluster, Options: []string{"ndots:5"}}},
		{name: "Default", policy: corev1.DNSDefault,
			want: resolvconf.Conf{Nameservers: []string{"10.0.0.2"}, Searches: []string{"corp.example", "lab.example"}, Options: []string{"ndots:2", "timeout:1"}}},
		{name: "None without dnsConfig", policy: corev1.DNSNone},
		{name: "None with dnsConfig", policy: corev1.DNSNone, dnsConfig: custom,
			want: resolvconf.Conf{Nameservers: []string{"192.0.2.53"}, Searches: []string{"my.example", "svc.cluster.local", "Corp.Example."}, Options: []string{"debug", "ndots:3"}}},
		{name: "no policy (the API server's default) is ClusterFirst", policy: "",
			want: resolvconf.Conf{Nameservers: []string{"10.96.0.10"}, Searches: cluster, Options: []string{"ndots:5"}}},
		{name: "an invalid policy falls back to ClusterFirst", policy: "Bogus",
			want: resolvconf.Conf{Nameservers: []string{"10.96.0.10"}, Searches: cluster, Options: []string{"ndots:5"}}},
		{name: "ClusterFirst with dnsConfig: appended, exact repeats dropped, options merged", policy: corev1.DNSClusterFirst, dnsConfig: custom,
			want: resolvconf.Conf{Nameservers: []string{"10.96.0.10", "192.0.2.53"},
				Searches: append(append([]string{}, cluster...), "my.example", "Corp.Example."), Options: []string{"debug", "ndots:3"}}},
		{name: "Default with an option without value replacing the node's", policy: corev1.DNSDefault,
			dnsConfig: &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots"}}},
			want:      resolvconf.Conf{Nameservers: []string{"10.0.0.2"}, Searches: []string{"corp.example", "lab.example"}, Options: []string{"ndots", "timeout:1"}}},
		{name: "ClusterFirst without cluster DNS falls back to Default", kubelet: &Kubelet{ClusterDomain: "cluster.local", ResolvConf: node},
			policy: corev1.DNSClusterFirst,
			want:   resolvconf.Conf{Nameservers: []string{"10.0.0.2"}, Searches: []string{"corp.example", "lab.example"}, Options: []string{"ndots:2", "timeout:1"}}},
		{name: "ClusterFirst without a cluster domain has the node's domains", kubelet: &Kubelet{ClusterDNS: []string{"10.96.0.10"}, ResolvConf: node},
			policy: corev1.DNSClusterFirst,
			want:   resolvconf.Conf{Nameservers: []string{"10.96.0.10"}, Searches: []string{"corp.example", "lab.example"}, Options: []string{"ndots:5"}}},
		{name: "Default without --resolv-conf", kubelet: &Kubelet{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"},
			NodeIPs: []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")}},
			policy: corev1.DNSDefault,
			want:   resolvconf.Conf{Nameservers: []string{"127.0.0.1", "::1"}, Searches: []string{"."}}},
		{name: "ClusterFirst without --resolv-conf", kubelet: &Kubelet{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"}},
			policy: corev1.DNSClusterFirst,
			want:   resolvconf.Conf{Nameservers: []string{"10.96.0.10"}, Searches: cluster[:3], Options: []string{"ndots:5"}}},
		{name: "the node's repeats: dropped after the cluster's, kept for Default", kubelet: &Kubelet{ClusterDomain: "cluster.local", ClusterDNS: []string{"10.96.0.10"},
			ResolvConf: &resolvconf.Conf{Searches: []string{"cluster.local", "a.example", "a.example"}}},
			policy: corev1.DNSClusterFirst,
			want:   resolvconf.Conf{Nameservers: []string{"10.96.0.10"}, Searches: append(append([]string{}, cluster[:3]...), "a.example"), Options: []string{"ndots:5"}}},
		{name: "Default keeps the node's repeats", kubelet: &Kubelet{ResolvConf: &resolvconf.Conf{Searches: []string{"a.example", "a.example"}}},
			policy: corev1.DNSDefault,
			want:   resolvconf.Conf{Searches: []string{"a.example", "a.example"}}},
		{name: "more than 32 domains: the first 32", policy: corev1.DNSNone,
			dnsConfig: &corev1.PodDNSConfig{Searches: func() []string {
				var s []string
				for i := range 33 {
					s = append(s, string(rune('a'+i%26))+strings.Repeat("x", i/26)+".example")
				}
				return s
			}()},
			want: resolvconf.Conf{Searches: func() []string {
				var s []string
				for i := range 32 {
					s = append(s, string(rune('a'+i%26))+strings.Repeat("x", i/26)+".example")
				}
				return s
			}()}},
		{name: "a domain over 253 characters is dropped", policy: corev1.DNSNone,
			dnsConfig: &corev1.PodDNSConfig{Searches: []string{"a.example", long(254, 'b'), "c.example"}},
			want:      resolvconf.Conf{Searches: []string{"a.example", "c.example"}}},
		{name: "a line over 2048 characters loses domains from the end", policy: corev1.DNSNone,
			dnsConfig: &corev1.PodDNSConfig{Searches: []string{long(250, 'a'), long(250, 'b'), long(250, 'c'), long(250, 'd'), long(250, 'e'),
				long(250, 'f'), long(250, 'g'), long(250, 'h'), long(250, 'i')}},
			want: resolvconf.Conf{Searches: []string{long(250, 'a'), long(250, 'b'), long(250, 'c'), long(250, 'd'), long(250, 'e'),
				long(250, 'f'), long(250, 'g'), long(250, 'h')}}},
		{name: "more than 3 nameservers: the first 3", policy: corev1.DNSClusterFirst,
			dnsConfig: &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}},
			want: resolvconf.Conf{Nameservers: []string{"10.96.0.10", "192.0.2.1", "192.0.2.2"}, Searches: cluster,
				Options: []string{"ndots:5"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &kubelet
			if tc.kubelet != nil {
				k = tc.kubelet
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api-0"},
				Spec:       corev1.PodSpec{DNSPolicy: tc.policy, HostNetwork: tc.hostNetwork, DNSConfig: tc.dnsConfig},
			}
			got := k.PodDNS(pod)
			if !equalConf(got, tc.want) {
				t.Errorf("Expected %+v, got %+v", tc.want, got)
			}
		})
	}
	// The node's configuration is the kubelet's, not the pod's to change.
	if want := []string{"corp.example", "lab.example"}; !reflect.DeepEqual(node.Searches, want) {
		t.Errorf("Expected the node's searches untouched, %v, got %v", want, node.Searches)
	}
}

// equalConf compares as the kubelet's own tests do: an empty list equals none.
func equalConf(a, b resolvconf.Conf) bool {
	eq := func(x, y []string) bool { return len(x) == 0 && len(y) == 0 || reflect.DeepEqual(x, y) }
	return eq(a.Nameservers, b.Nameservers) && eq(a.Searches, b.Searches) && eq(a.Options, b.Options)
}

package podlist

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/raceguard/raceguard/internal/resolvconf"
	corev1 "k8s.io/api/core/v1"
)

// The kubelet's limits (pkg/apis/core/validation, v1.34; k8s.io/apimachinery validation).
const (
	maxNameservers     = 3    // MaxDNSNameservers
	maxSearchPaths     = 32   // MaxDNSSearchPaths
	maxSearchListChars = 2048 // MaxDNSSearchListChars
	maxSearchLength    = 253  // DNS1123SubdomainMaxLength
)

// Kubelet is what of a kubelet's configuration a pod's resolv.conf is made from.
type Kubelet struct {
	ClusterDomain string   // --cluster-domain; empty: no cluster search domains
	ClusterDNS    []string // --cluster-dns; empty: ClusterFirst pods fall back to Default
	// ResolvConf is the kubelet's --resolv-conf as Parse reads it; nil for --resolv-conf="",
	// where Default pods get the node's loopback as nameserver and "." as search list.
	ResolvConf *resolvconf.Conf
	NodeIPs    []netip.Addr // the node's addresses, used only without a ResolvConf
}

// dnsType is how the kubelet builds a pod's resolv.conf (podDNSType).
type dnsType uint8

const (
	dnsCluster dnsType = iota // the cluster's nameservers and search domains, then the node's
	dnsHost                   // the node's resolv.conf
	dnsNone                   // only the pod's dnsConfig
)

// podDNSType is the kubelet's getPodDNSType. An invalid policy, which the API server rejects,
// is ClusterFirst, as the kubelet falls back to; so is an empty one, which the API server
// defaults to ClusterFirst.
func podDNSType(pod *corev1.Pod) dnsType {
	switch pod.Spec.DNSPolicy {
	case corev1.DNSNone:
		return dnsNone
	case corev1.DNSDefault:
		return dnsHost
	case corev1.DNSClusterFirst:
		if pod.Spec.HostNetwork {
			return dnsHost
		}
	}
	return dnsCluster
}

// PodDNS returns the resolv.conf the kubelet writes for pod: a port of GetPodDNS in
// k8s.io/kubernetes/pkg/kubelet/network/dns (v1.34). Options are sorted; the kubelet's order is
// a map's, so random, and no resolver cares about it.
func (k *Kubelet) PodDNS(pod *corev1.Pod) resolvconf.Conf {
	var c resolvconf.Conf
	if k.ResolvConf != nil {
		c = resolvconf.Conf{
			Nameservers: slices.Clone(k.ResolvConf.Nameservers),
			Searches:    slices.Clone(k.ResolvConf.Searches),
			Options:     slices.Clone(k.ResolvConf.Options),
		}
	}
	switch podDNSType(pod) {
	case dnsNone:
		c = resolvconf.Conf{}
	case dnsCluster:
		if len(k.ClusterDNS) != 0 {
			c.Nameservers = slices.Clone(k.ClusterDNS)
			c.Searches = k.clusterSearches(c.Searches, pod.Namespace)
			c.Options = []string{"ndots:5"}
			break
		}
		// Without cluster nameservers the kubelet falls back to Default.
		fallthrough
	case dnsHost:
		if k.ResolvConf == nil {
			for _, ip := range k.NodeIPs {
				if ip.Is6() && !ip.Is4In6() {
					c.Nameservers = append(c.Nameservers, "::1")
				} else {
					c.Nameservers = append(c.Nameservers, "127.0.0.1")
				}
			}
			if len(c.Nameservers) == 0 {
				c.Nameservers = append(c.Nameservers, "127.0.0.1")
			}
			c.Searches = []string{"."}
		}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		c.Nameservers = omitDuplicates(append(c.Nameservers, dc.Nameservers...))
		c.Searches = omitDuplicates(append(c.Searches, dc.Searches...))
		c.Options = mergeOptions(c.Options, dc.Options)
	}
	if len(c.Nameservers) > maxNameservers {
		c.Nameservers = c.Nameservers[:maxNameservers]
	}
	c.Searches = fitSearches(c.Searches)
	slices.Sort(c.Options)
	return c
}

// clusterSearches is generateSearchesForDNSClusterFirst: the namespace's, the services' and the
// cluster's domains, then the node's, each once.
func (k *Kubelet) clusterSearches(host []string, namespace string) []string {
	if k.ClusterDomain == "" {
		return host
	}
	cluster := []string{namespace + ".svc." + k.ClusterDomain, "svc." + k.ClusterDomain, k.ClusterDomain}
	return omitDuplicates(append(cluster, host...))
}

// omitDuplicates keeps the first of each string: exact strings, so "a.example" and
// "A.example." both stay.
func omitDuplicates(s []string) []string {
	seen := make(map[string]bool, len(s))
	var out []string
	for _, v := range s {
		if !seen[v] {
			out = append(out, v)
			seen[v] = true
		}
	}
	return out
}

// mergeOptions is mergeDNSOptions: the pod's options replace the existing ones of the same name,
// an option with a value written "name:value", one without "name".
func mergeOptions(existing []string, pod []corev1.PodDNSConfigOption) []string {
	m := make(map[string]string, len(existing)+len(pod))
	for _, o := range existing {
		name, value, _ := strings.Cut(o, ":")
		m[name] = value
	}
	for _, o := range pod {
		m[o.Name] = ""
		if o.Value != nil {
			m[o.Name] = *o.Value
		}
	}
	out := make([]string, 0, len(m))
	for name, value := range m {
		if value != "" {
			name += ":" + value
		}
		out = append(out, name)
	}
	return out
}

// fitSearches is formDNSSearchFitsLimits: at most 32 domains, then without those longer than 253
// characters, then domains cut from the end until the line is at most 2048 characters.
func fitSearches(s []string) []string {
	if len(s) > maxSearchPaths {
		s = s[:maxSearchPaths]
	}
	s = slices.DeleteFunc(s, func(d string) bool { return len(d) > maxSearchLength })
	if n := len(strings.Join(s, " ")); n > maxSearchListChars {
		cut, cutLen := 0, 0
		for i := len(s) - 1; i >= 0; i-- {
			cutLen += len(s[i]) + 1
			cut++
			if n-cutLen <= maxSearchListChars {
				break
			}
		}
		s = s[:len(s)-cut]
	}
	return s
}

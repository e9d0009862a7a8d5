package podlist

import (
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/resolvconf"
	corev1 "k8s.io/api/core/v1"
)

// State is what a Lookup knows of an address.
type State uint8

const (
	// Unknown: the source knows nothing now: its watch has not synced, is lost, or its table
	// overflowed.
	Unknown State = iota
	// Known: one pod holds the address, and the List is what its resolver reads.
	Known
	// Shared: several hold the address: a host-network pod's (the node's own, shared with every
	// other host-network pod and the node itself), or two pods at once (an address reused while
	// the pod that had it is still listed).
	Shared
	// NoPod: no pod holds the address.
	NoPod
	// Ambiguous: one pod holds the address, but its search list depends on what the API cannot
	// show: its C library (glibc and musl read its resolv.conf differently), an environment
	// variable, or which version of the node's resolv.conf its sandbox was made from.
	Ambiguous
)

var stateNames = [...]string{Unknown: "unknown", Known: "known", Shared: "shared", NoPod: "no_pod", Ambiguous: "ambiguous"}

func (s State) String() string { return stateNames[s] }

// List is what a pod's resolver reads from the resolv.conf the kubelet wrote for it. A List is
// shared by every pod with the same one and never changes: do not modify it.
type List struct {
	// Search holds the search domains in the order the resolver tries them, fully qualified and
	// lower-cased, repeats included (the kubelet removes only exact repeats, so "Corp.example"
	// and "corp.example." both stay, and the resolver tries both).
	Search []string
	// NDots is the resolver's ndots: 1 without an ndots option.
	NDots int

	key string // the Source's key for it among the lists its pods share
}

// C library limits a list must stay within to be read alike by every resolver a pod may use.
const (
	// maxSearchLine is the longest search or options line, newline included, that musl reads:
	// it skips a longer line whole (fgets into a 256-byte buffer); glibc before 2.26 keeps 255
	// bytes of the domains.
	maxSearchLine = 255
	// maxOldGlibcSearch is how many search domains glibc before 2.26 (MAXDNSRCH) reads.
	maxOldGlibcSearch = 6
	// maxNDots is the most ndots either library takes (RES_MAXNDOTS).
	maxNDots = 15
)

// podFacts are what of a pod besides its resolv.conf changes how its resolver reads the file.
type podFacts struct {
	// envOverride: a container sets LOCALDOMAIN or RES_OPTIONS, which glibc reads instead of or
	// on top of the file, and musl ignores.
	envOverride bool
	// windows: the pod runs on Windows, whose resolver is neither glibc nor musl.
	windows bool
	// dottedHostname: the pod's hostname may have a dot, from which glibc takes a search domain
	// when the file has none, and musl does not.
	dottedHostname bool
}

// facts reads a pod's podFacts.
func facts(pod *corev1.Pod) podFacts {
	var f podFacts
	f.windows = pod.Spec.OS != nil && pod.Spec.OS.Name == corev1.Windows
	check := func(env []corev1.EnvVar) {
		for _, e := range env {
			if e.Name == "LOCALDOMAIN" || e.Name == "RES_OPTIONS" {
				f.envOverride = true
			}
		}
	}
	for i := range pod.Spec.InitContainers {
		check(pod.Spec.InitContainers[i].Env)
	}
	for i := range pod.Spec.Containers {
		check(pod.Spec.Containers[i].Env)
	}
	for i := range pod.Spec.EphemeralContainers {
		check(pod.Spec.EphemeralContainers[i].Env)
	}
	// The kubelet's GeneratePodHostNameAndDomain: the hostnameOverride (where its feature gate
	// is on), else spec.hostname (a label, no dot), else the pod's name, cut to 63 characters;
	// with setHostnameAsFQDN and a subdomain, the name under it.
	host := pod.Name
	if pod.Spec.Hostname != "" {
		host = pod.Spec.Hostname
	}
	if len(host) > 63 {
		host = strings.TrimRight(host[:63], "-.")
	}
	f.dottedHostname = strings.Contains(host, ".") ||
		(pod.Spec.HostnameOverride != nil && strings.Contains(*pod.Spec.HostnameOverride, ".")) ||
		(pod.Spec.SetHostnameAsFQDN != nil && *pod.Spec.SetHostnameAsFQDN && pod.Spec.Subdomain != "")
	return f
}

// resolverList returns what a resolver reads from c, the resolv.conf the kubelet wrote for a pod
// with facts f: its List and Known, or nil and Ambiguous where glibc and musl (or two glibc
// versions) would read it differently.
func resolverList(c resolvconf.Conf, f podFacts) (*List, State) {
	if f.envOverride || f.windows {
		return nil, Ambiguous
	}
	if len(c.Searches) == 0 && f.dottedHostname {
		return nil, Ambiguous
	}
	if len(c.Searches) > maxOldGlibcSearch || len("search ")+len(strings.Join(c.Searches, " "))+1 > maxSearchLine {
		return nil, Ambiguous
	}
	l := &List{Search: make([]string, 0, len(c.Searches)), NDots: 1}
	for _, d := range c.Searches {
		// glibc takes "." and a leading dot as the root; musl appends them as they are.
		if strings.HasPrefix(d, ".") {
			return nil, Ambiguous
		}
		fq := dns.Fqdn(lowerASCII(d))
		// A name that cannot be sent is skipped by one library and fails the lookup in another.
		if _, ok := dns.IsDomainName(fq); !ok || len(fq) > 254 {
			return nil, Ambiguous
		}
		l.Search = append(l.Search, fq)
	}
	line := "options " + strings.Join(c.Options, " ")
	for _, o := range c.Options {
		name, value, colon := strings.Cut(o, ":")
		switch {
		case name == "ndots" && colon:
			n, ok := ndots(value)
			if !ok {
				return nil, Ambiguous
			}
			l.NDots = n
		case strings.Contains(o, "ndots:"):
			// musl takes the first "ndots:" anywhere in the line, whose order is random.
			return nil, Ambiguous
		}
	}
	if l.NDots != 1 && len(line)+1 > maxSearchLine {
		return nil, Ambiguous // musl skips the line, glibc reads it
	}
	return l, Known
}

// ndots reads an ndots value as glibc (atoi) and musl (strtoul after a digit) both do, and
// reports false where they differ: no leading digit (glibc reads 0, musl keeps 1), or digits
// enough to overflow glibc's int.
func ndots(v string) (int, bool) {
	digits := len(v) - len(strings.TrimLeft(v, "0123456789"))
	if digits == 0 || digits > 9 {
		return 0, false
	}
	n, _ := strconv.Atoi(v[:digits])
	return min(n, maxNDots), true
}

// lowerASCII lower-cases the ASCII letters of s, as DNS compares names.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

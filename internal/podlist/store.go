package podlist

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/resolvconf"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

// table is the label of the pod table's metrics.
const table = "pods"

// key names a pod.
type key struct{ namespace, name string }

// pod is what the store keeps of a pod. Its fields are read and written under Source.mu only.
type pod struct {
	addrs       addrs // the addresses it holds; none while it holds none
	hostNetwork bool
	state       State // Known or Ambiguous while it holds addresses
	list        *List // its resolver's list while state is Known
	seen        int64 // when it got its addresses (Unix ns): about when its sandbox was made
}

// addrs are a pod's addresses, in 16 bytes each (IPv4 as IPv4-mapped IPv6): at most one of each
// family, since the API server refuses more than two.
type addrs struct {
	a [2][16]byte
	n uint8
}

func (as *addrs) all() [][16]byte { return as.a[:as.n] }

// interned is the one copy of a namespace's name the pods held share, and how many they are.
type interned struct {
	name string
	pods int
}

// sharedList is a List and how many pods have it.
type sharedList struct {
	l *List
	n int
}

// store is the Source as client-go's reflector sees it: the ReflectorStore it writes the watched
// pods into, one event at a time, in the order the API server sent them.
type store Source

var _ cache.TransformingStore = (*store)(nil)

// Add stores a pod the API server added.
func (st *store) Add(obj any) error { return (*Source)(st).upsert(obj, true) }

// Update stores a pod the API server changed.
func (st *store) Update(obj any) error { return (*Source)(st).upsert(obj, false) }

// Delete forgets a pod the API server deleted, or that left the field selector.
func (st *store) Delete(obj any) error { return (*Source)(st).delete(obj) }

// Replace stores a whole new list: the first sync, and every relist after a lost watch.
func (st *store) Replace(list []any, _ string) error { return (*Source)(st).replace(list) }

// Resync is a no-op: the store has no handlers to replay to.
func (*store) Resync() error { return nil }

// Transformer returns trim, which the reflector applies to the pods it holds while it syncs.
func (*store) Transformer() cache.TransformFunc { return trim }

// podOf returns the pod obj is, and its key; a tombstone gives its key only.
func podOf(obj any) (*corev1.Pod, key, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return o, key{o.Namespace, o.Name}, nil
	case cache.DeletedFinalStateUnknown:
		ns, name, err := cache.SplitMetaNamespaceKey(o.Key)
		return nil, key{ns, name}, err
	}
	return nil, key{}, fmt.Errorf("unexpected object %T in the pod watch", obj)
}

func (s *Source) upsert(obj any, added bool) error {
	p, k, err := podOf(obj)
	if err != nil || p == nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.pods[k]
	if cur == nil {
		// The reflector adds each pod once (ADDED) and updates it after: an update of a pod
		// not held is one the table refused, counted already.
		if added {
			s.total++
		}
		if cur = s.admit(k, p); cur == nil {
			return nil
		}
	}
	s.place(cur, p, s.now())
	s.checkOverflow()
	return nil
}

// admit makes a record for a new pod, or refuses it when the table is full.
func (s *Source) admit(k key, p *corev1.Pod) *pod {
	if len(s.pods) >= s.capacity {
		bounded.Overflows(table).Inc()
		s.raise(overflowed, fmt.Errorf("more than %d pods", s.capacity))
		return nil
	}
	cur := &pod{hostNetwork: p.Spec.HostNetwork}
	k.namespace = s.intern(k.namespace)
	s.pods[k] = cur
	s.live.Store(int64(len(s.pods)))
	return cur
}

func (s *Source) delete(obj any) error {
	_, k, err := podOf(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if cur := s.pods[k]; cur != nil {
		s.forget(k, cur)
	}
	s.checkOverflow()
	return nil
}

func (s *Source) replace(list []any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := make(map[key]bool, len(list))
	for _, obj := range list {
		if _, k, err := podOf(obj); err == nil {
			keep[k] = true
		}
	}
	// Pods gone first: an address they held is free before a new holder is weighed.
	for k, cur := range s.pods {
		if !keep[k] {
			s.forget(k, cur)
		}
	}
	now := s.now()
	full := false
	for _, obj := range list {
		p, k, err := podOf(obj)
		if err != nil || p == nil {
			continue
		}
		cur := s.pods[k]
		if cur == nil {
			if len(s.pods) >= s.capacity {
				full = true
				continue
			}
			cur = s.admit(k, p)
		}
		s.place(cur, p, now)
	}
	s.total = len(keep)
	s.relisting = false
	if full {
		bounded.Overflows(table).Add(float64(s.total - len(s.pods)))
		s.raise(overflowed, fmt.Errorf("%d pods, more than %d", s.total, s.capacity))
	} else {
		s.lower(overflowed)
	}
	s.synced(len(s.pods))
	return nil
}

// intern returns the copy of namespace the table holds already, so that a namespace's pods
// share one string, and counts the pod that holds it.
func (s *Source) intern(namespace string) string {
	n, ok := s.namespaces[namespace]
	if !ok {
		n.name = namespace
	}
	n.pods++
	s.namespaces[namespace] = n
	return n.name
}

// uninterned drops a pod's hold on its namespace's string.
func (s *Source) uninterned(namespace string) {
	if n := s.namespaces[namespace]; n.pods <= 1 {
		delete(s.namespaces, namespace)
	} else {
		n.pods--
		s.namespaces[namespace] = n
	}
}

// forget removes a pod's record.
func (s *Source) forget(k key, cur *pod) {
	s.unindex(cur)
	s.release(cur.list)
	s.uninterned(k.namespace)
	delete(s.pods, k)
	s.live.Store(int64(len(s.pods)))
}

// checkOverflow ends an overflow once the table holds every pod the API server has, or asks for
// a relist once it could: pods it refused are not held, and only a list shows them again.
func (s *Source) checkOverflow() {
	if s.health.Load()&overflowed == 0 {
		return
	}
	switch {
	case s.total == len(s.pods):
		s.lower(overflowed)
	case s.total <= s.capacity && !s.relisting:
		s.relisting = true
		if s.relist != nil {
			s.relist()
		}
	}
}

// place records what p holds now. A pod's DNS settings cannot change, so its list is made once,
// when it gets its addresses (when the kubelet made its sandbox and wrote its resolv.conf), and
// again only if its addresses change (a new sandbox).
func (s *Source) place(cur *pod, p *corev1.Pod, now time.Time) {
	as := held(p)
	if as == cur.addrs {
		return
	}
	s.unindex(cur)
	s.release(cur.list)
	cur.addrs, cur.list, cur.state = as, nil, Unknown
	if as.n > 0 {
		cur.seen = now.UnixNano()
		cur.list, cur.state = s.listFor(p, now)
		for _, a := range cur.addrs.all() {
			s.ix.add(a, cur)
		}
	}
}

func (s *Source) unindex(cur *pod) {
	for _, a := range cur.addrs.all() {
		s.ix.remove(a, cur)
	}
}

// held returns the addresses p holds: none once it is terminating or has ended, since its
// address may then be given to a new pod before the API server hears that it is gone.
func held(p *corev1.Pod) addrs {
	var as addrs
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return as
	}
	ips := p.Status.PodIPs
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: p.Status.PodIP}}
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip.IP); err == nil && int(as.n) < len(as.a) && !slices.Contains(as.all(), a.As16()) {
			as.a[as.n] = a.As16()
			as.n++
		}
	}
	return as
}

// listFor returns the list of a pod that got its addresses at now: what the kubelet wrote from
// the node's resolv.conf of the moment, unless the file changed too recently to tell which of
// two the kubelet read.
func (s *Source) listFor(p *corev1.Pod, now time.Time) (*List, State) {
	v := s.host.Version()
	if v.Conf == nil || (!v.Since.IsZero() && now.Before(v.Since.Add(s.settle))) {
		return nil, Ambiguous
	}
	k := Kubelet{ClusterDomain: s.clusterDomain, ClusterDNS: clusterDNS, ResolvConf: v.Conf}
	l, st := resolverList(k.PodDNS(p), facts(p))
	if st != Known {
		return nil, st
	}
	return s.share(l), Known
}

// clusterDNS stands for the kubelet's --cluster-dns: a server asked by ClusterFirst pods is
// theirs, so the kubelet has one; which address it is does not change the search list.
var clusterDNS = []string{"cluster-dns"}

// share returns the List equal to l that other pods have already, or l.
func (s *Source) share(l *List) *List {
	var b strings.Builder
	b.WriteString(strconv.Itoa(l.NDots))
	for _, d := range l.Search {
		b.WriteByte(' ')
		b.WriteString(d)
	}
	l.key = b.String()
	if sl := s.lists[l.key]; sl != nil {
		sl.n++
		return sl.l
	}
	s.lists[l.key] = &sharedList{l: l, n: 1}
	return l
}

// release drops a pod's hold on its List.
func (s *Source) release(l *List) {
	if l == nil {
		return
	}
	if sl := s.lists[l.key]; sl != nil && sl.l == l {
		if sl.n--; sl.n == 0 {
			delete(s.lists, l.key)
		}
	}
}

// hostChanged makes the pods that got their addresses since the node's resolv.conf last showed
// its old content Ambiguous: the kubelet may have made their sandboxes from either content.
func (s *Source) hostChanged(v *resolvconf.Version) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cur := range s.pods {
		if cur.addrs.n == 0 || cur.state != Known || cur.seen <= v.Before.UnixNano() {
			continue
		}
		s.release(cur.list)
		cur.list, cur.state = nil, Ambiguous
		for _, a := range cur.addrs.all() {
			s.ix.refresh(a)
		}
	}
}

/*
Package podlist knows, for a pod's address, the search list and ndots its resolver reads: the
resolv.conf the kubelet wrote for it, computed from facts (the pod's spec in the Kubernetes API
and the node's resolv.conf), never from what a client sends.

A Source watches pods with client-go's reflector: in node-local mode only one node's (a field
selector on spec.nodeName: about a hundred pods whatever the cluster's size), in cluster mode
every pod; both leave out pods that have ended (status.phase). Each pod is kept as a small record
(the addresses it holds, its list), and pods with the same list share one. Kubelet.PodDNS is a
port of the kubelet's GetPodDNS (pkg/kubelet/network/dns, v1.34); its output becomes a List only
where glibc and musl, old and new, read the file alike: otherwise the address is Ambiguous.

What an address answers:

  - Known, with the List, when exactly one pod holds it.
  - Shared for a host-network pod's address (the node's own: every host-network pod and the node
    itself send from it) and while two pods claim one address.
  - NoPod when none holds it, Ambiguous when its one pod's list cannot be told (above).
  - Unknown for every address before the watch has synced, while it is lost (a failed list or
    watch, a watch the server ended with an error, until client-go has listed or watched again)
    and while the API server has more pods than the table's capacity.

A pod holds its addresses from the moment they appear in its status until it is deleted,
terminating (deletionTimestamp) or ended (Succeeded, Failed): an address is handed to a new pod
only after the old one's sandbox is gone, and the API server may hear of the new pod first, so a
pod on its way out never answers. Events apply in the order the API server sent them.

The kubelet writes a pod's resolv.conf once, when it makes the sandbox, from the node's
resolv.conf of that moment. A pod's list is therefore made once, when its addresses appear, and
kept: when the node's file changes, pods made before keep their lists, pods whose addresses
appeared after the last read of the old content, and for a settling time after the change was
seen, are Ambiguous (the kubelet may have read either), and later pods get the new content. In
cluster mode the node's resolv.conf is the operator's statement for every node: a pod's list
has its own node's search domains, which this server cannot read.

Lookup is safe for concurrent use and allocates nothing: an atomic load and a read-locked map
read on one of 64 shards.
*/
package podlist

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/module"
	"github.com/raceguard/raceguard/internal/resolvconf"
	corev1 "k8s.io/api/core/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

var log = clog.NewWithPlugin(module.Name)

// Default capacities: ten times the kubelet's default of 110 pods a node, and Kubernetes'
// tested limit of 150,000 pods a cluster.
const (
	DefaultNodeCapacity    = 1100
	DefaultClusterCapacity = 150000
)

// settle is how long after a change of the node's resolv.conf was seen a pod's new addresses
// may still come from a sandbox made from the old content: the kubelet's status update and the
// watch between the sandbox and this server.
const settle = 30 * time.Second

// Config says which pods a Source watches and how their resolv.conf is made.
type Config struct {
	// Kubeconfig is a kubeconfig file's path; empty for the pod's own service account
	// (in-cluster configuration).
	Kubeconfig string
	// Node limits the watch to that node's pods (node-local mode); empty watches every pod
	// (cluster mode).
	Node string
	// ClusterDomain is the kubelet's --cluster-domain, such as cluster.local.
	ClusterDomain string
	// Host is the node's resolv.conf as the kubelet reads it (its --resolv-conf): a watcher of
	// the file in node-local mode (resolvconf.NewFile, the one search infer reads, started by its
	// owner); in cluster mode an assumption about every node, such as resolvconf.New of the
	// domains the operator states.
	Host *resolvconf.Watcher
	// Capacity is the most pods the Source holds: 0 for DefaultNodeCapacity or
	// DefaultClusterCapacity.
	Capacity int
}

// Source holds the search list of every pod it watches, by address.
type Source struct {
	api           corev1client.PodInterface
	http          *http.Client
	selector      string
	clusterDomain string
	host          *resolvconf.Watcher
	capacity      int
	settle        time.Duration
	now           func() time.Time
	backoff       *wait.Backoff // client-go's when nil

	ix     *index
	health atomic.Uint32 // the reasons to answer Unknown (unsynced, lost, between, overflowed)
	live   atomic.Int64  // len(pods), for scrapes

	mu         sync.Mutex             // serialises the store's changes; protects the fields below
	pods       map[key]*pod           // protected by mu
	lists      map[string]*sharedList // the Lists pods share, by content; protected by mu
	namespaces map[string]interned    // the namespaces of the pods held, one string each; protected by mu
	total      int                    // the pods the API server has for the selector, held or not; protected by mu
	relisting  bool                   // a relist was asked for and has not been stored; protected by mu
	relist     context.CancelFunc     // ends the running reflector, to start over with a list; protected by mu

	stateMu  sync.Mutex // serialises changes of health and their logs
	needList bool       // a watch ended with an error: only a list ends the loss; protected by stateMu

	why error // why the Source is unavailable (New); set before it is shared

	runMu  sync.Mutex         // protects cancel
	cancel context.CancelFunc // non-nil while started
	wg     sync.WaitGroup     // the Source's goroutines
}

// New returns a Source for cfg, not yet started. It reads the kubeconfig (or the in-cluster
// configuration) now and contacts nothing. A kubeconfig the Corefile names must be readable; a
// pod without its service account's token (automountServiceAccountToken: false) gets a Source
// that never watches: its lookups answer Unknown and pod_watch_up is 0, and Start logs why, so
// that a missing privilege costs fewer completions, never the server.
func New(cfg Config) (*Source, error) {
	if cfg.Kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("pod watch: %w", err)
		}
		return newSource(rc, cfg)
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		s, serr := newSource(&rest.Config{Host: "https://unavailable.invalid"}, cfg)
		if serr != nil {
			return nil, serr
		}
		s.health.Store(unavailable)
		s.why = err
		return s, nil
	}
	return newSource(rc, cfg)
}

func newSource(rc *rest.Config, cfg Config) (*Source, error) {
	if _, ok := resolvconf.Host(cfg.ClusterDomain); !ok || cfg.ClusterDomain == "" || cfg.ClusterDomain == "." {
		return nil, fmt.Errorf("pod watch: cluster domain %q is not a domain name", cfg.ClusterDomain)
	}
	if cfg.Host == nil {
		return nil, errors.New("pod watch: no node resolv.conf")
	}
	if cfg.Capacity < 0 {
		return nil, fmt.Errorf("pod watch: capacity %d is negative", cfg.Capacity)
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = module.Name
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	// A transport of its own (client-go shares one per TLS configuration otherwise), so that
	// Stop can close its connections.
	rc.Proxy = http.ProxyFromEnvironment
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("pod watch: %w", err)
	}
	c, err := corev1client.NewForConfigAndClient(rc, hc)
	if err != nil {
		return nil, fmt.Errorf("pod watch: %w", err)
	}
	s := &Source{
		api:           c.Pods(""),
		http:          hc,
		selector:      selector(cfg.Node),
		clusterDomain: cfg.ClusterDomain,
		host:          cfg.Host,
		capacity:      cfg.Capacity,
		settle:        settle,
		now:           time.Now,
		ix:            newIndex(),
		pods:          make(map[key]*pod),
		lists:         make(map[string]*sharedList),
		namespaces:    make(map[string]interned),
	}
	if s.capacity == 0 {
		s.capacity = DefaultClusterCapacity
		if cfg.Node != "" {
			s.capacity = DefaultNodeCapacity
		}
	}
	s.health.Store(unsynced)
	return s, nil
}

// selector is the field selector of the watch: the node's pods, or every pod, that have not
// ended. An authorizer that sees field selectors (Kubernetes 1.31 and later) can allow the
// first and refuse any other.
func selector(node string) string {
	s := "status.phase!=" + string(corev1.PodSucceeded) + ",status.phase!=" + string(corev1.PodFailed)
	if node != "" {
		s = "spec.nodeName=" + node + "," + s
	}
	return s
}

// Lookup returns what the resolver of the pod at addr reads: its List when the State is Known,
// nil otherwise. It allocates nothing and is safe for concurrent use.
func (s *Source) Lookup(addr netip.Addr) (*List, State) {
	if s.health.Load() != 0 {
		lookups[Unknown].Inc()
		return nil, Unknown
	}
	l, st := s.ix.get(addr.Unmap().WithZone(""))
	lookups[st].Inc()
	return l, st
}

// Ready reports whether the watch has synced once and not been stopped: the readiness the ready
// plugin asks of the kubernetes plugin. Lookups answer Unknown whenever the watch is lost, Ready
// or not. A server without lists answers as stock CoreDNS does, only with more queries, so
// readiness need not wait for them: gate it on Ready only where a server must not serve before
// it knows its clients' lists.
func (s *Source) Ready() bool { return s.health.Load()&(unsynced|stopped|unavailable) == 0 }

// Start watches until Stop. A Source starts once.
func (s *Source) Start() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	bounded.Register(table, sized{s})
	register(s)
	if s.health.Load()&unavailable != 0 {
		log.Errorf("No pod watch (%v): search lists come from the namespace hierarchy only", s.why)
		return
	}
	s.wg.Add(2)
	go s.run(ctx)
	go s.followHost(ctx)
}

// Stop ends the watch and waits for the Source's goroutines. Its lookups answer Unknown after.
func (s *Source) Stop() {
	s.runMu.Lock()
	cancel := s.cancel
	s.cancel = nil
	s.runMu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	s.wg.Wait()
	s.health.Or(stopped)
	utilnet.CloseIdleConnectionsFor(s.http.Transport)
	bounded.Unregister(table, sized{s})
	unregister(s)
}

// run runs client-go's reflector into the store, and starts it over when the store asks for a
// new list.
func (s *Source) run(ctx context.Context) {
	defer s.wg.Done()
	lw := &cache.ListWatch{ListWithContextFunc: s.list, WatchFuncWithContext: s.watch}
	for ctx.Err() == nil {
		rctx, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		s.relist = cancel
		s.mu.Unlock()
		r := cache.NewReflectorWithOptions(lw, &corev1.Pod{}, (*store)(s), cache.ReflectorOptions{
			Name:            module.Name + " pods",
			TypeDescription: "*v1.Pod",
			Backoff:         s.backoff,
		})
		r.RunWithContext(rctx)
		cancel()
	}
}

// followHost marks the pods the last change of the node's resolv.conf leaves in doubt.
func (s *Source) followHost(ctx context.Context) {
	defer s.wg.Done()
	v := s.host.Version()
	for {
		select {
		case <-ctx.Done():
			return
		case <-v.Replaced():
		}
		v = s.host.Version()
		s.hostChanged(v)
	}
}

// sized exports the table's occupancy.
type sized struct{ s *Source }

func (t sized) Live() int { return int(t.s.live.Load()) }
func (t sized) Cap() int  { return t.s.capacity }

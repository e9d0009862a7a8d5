package nodelocal

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raceguard/raceguard/internal/nodenet"
)

// The node set-up belongs to the process, not to a server instance: a reload (SIGUSR1, the
// reload plugin) starts the new instance before it shuts the old one down, so the set-up is
// shared, counted, and torn down only at the final shutdown.
var (
	mu    sync.Mutex // protects the variables below
	node  *nodenet.Node
	users int           // server instances that acquired node and did not release it
	stop  chan struct{} // closed to end run
	done  chan struct{} // closed when run ended
)

// current is what the newest server instance gives run: its upstream probe and the zone of its
// self-check names.
var current atomic.Pointer[instance]

// instance is one server instance's part in the set-up.
type instance struct {
	probe *upstreamProbe // nil: probe off, capture at once
	zone  string         // the self-check's names go under it
}

// Timings of run.
const (
	// installTimeout bounds the wait for the servers to listen before the rules go in.
	installTimeout = time.Minute
	// holdRetry is how often a holding server probes (at most: check_interval if shorter), so that
	// it takes the traffic soon after its upstream answers.
	holdRetry = time.Second
	// rise answered probes in a row capture; fall unanswered ones in a row hold (gate).
	rise, fall = 2, 3
)

// acquire is a server instance's startup. The first one checks the node (changing nothing if
// it may not proceed), makes the addresses and the holding table before the servers bind them,
// and starts run; a reload's instance applies its configuration to the set-up.
func acquire(cfg nodenet.Config, in *instance) (*nodenet.Node, error) {
	mu.Lock()
	defer mu.Unlock()
	if node == nil {
		if err := nodenet.Preflight(cfg); err != nil {
			return nil, err
		}
		n := nodenet.New(cfg)
		n.Logf = log.Infof
		if err := n.Prepare(); err != nil {
			n.Teardown()
			return nil, err
		}
		node = n
		current.Store(in)
		stop, done = make(chan struct{}), make(chan struct{})
		go run(n, cfg, stop, done)
	} else if err := node.Reconfigure(cfg); err != nil {
		return nil, err
	}
	current.Store(in)
	users++
	return node, nil
}

// release is a server instance's shutdown.
func release(in *instance) {
	mu.Lock()
	defer mu.Unlock()
	if users > 0 {
		users--
	}
	current.CompareAndSwap(in, nil)
}

// finish is the final shutdown: when no server instance uses the set-up any more, it stops run
// and tears the set-up down.
func finish() error {
	mu.Lock()
	defer mu.Unlock()
	if node == nil || users > 0 {
		return nil
	}
	close(stop)
	<-done
	err := node.Teardown()
	node = nil
	return err
}

// run keeps the set-up. Capturing, it checks it every interval; it probes the upstream each time,
// and holds after fall unanswered probes in a row. Holding (as it starts), it probes every
// holdRetry and captures, once the servers listen, after rise answered probes in a row. While it
// captures (or observes), it checks that the node's queries to each address reach it.
func run(n *nodenet.Node, cfg nodenet.Config, stop, done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-done:
		}
	}()
	r := runner{n: n, cfg: cfg, g: gate{rise: rise, fall: fall}, checked: map[netip.Addr]string{}}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r.step(ctx)
		wait := cfg.Interval
		if !r.g.capturing && !cfg.Observe {
			wait = min(wait, holdRetry)
		}
		t.Reset(wait)
	}
}

// runner is run's state.
type runner struct {
	n       *nodenet.Node
	cfg     nodenet.Config
	g       gate
	held    string                // why it holds, as last logged
	checked map[netip.Addr]string // each address's self-check result, as last logged
}

// step is one round of run.
func (r *runner) step(ctx context.Context) {
	if r.cfg.Observe {
		if !r.n.Ready() {
			if err := r.n.Capture(ctx, installTimeout); err != nil {
				log.Errorf("node set-up: %v", err)
				return
			}
		} else {
			r.n.Check()
		}
		r.selfCheck(ctx)
		return
	}
	r.n.Check()
	in := current.Load()
	answered, why := true, ""
	if in != nil && in.probe != nil {
		if err := in.probe.probe(ctx); err != nil {
			answered, why = false, err.Error()
			probes.WithLabelValues("unanswered").Inc()
		} else {
			probes.WithLabelValues("answered").Inc()
		}
	}
	if in == nil || in.probe == nil {
		r.g.capturing, r.g.streak = true, 0 // probe off: capture at once
		if !r.n.Capturing() {
			r.capture(ctx, "probe off")
		}
	} else if r.g.observe(answered) {
		if r.g.capturing {
			r.capture(ctx, fmt.Sprintf("its upstream answered %s A %d times in a row", in.probe.name, rise))
		} else {
			if err := r.n.Hold(); err != nil {
				log.Errorf("node set-up: %v", err)
			}
			captureChanges.WithLabelValues("hold").Inc()
			r.held = why
			r.forgetSelfCheck()
			log.Warningf("holding: the upstream did not answer %s A %d times in a row (%s): the node's pods reach kube-dns through kube-proxy until it does", in.probe.name, fall, why)
		}
	} else if !r.g.capturing && why != "" && r.held == "" {
		// Starting: say once why it does not capture yet.
		r.held = why
		log.Infof("holding until the upstream answers %s A (%s): the node's pods reach kube-dns through kube-proxy meanwhile", in.probe.name, why)
	}
	if r.n.Capturing() {
		r.selfCheck(ctx)
	}
}

// capture takes the pods' DNS, once the servers listen; when they do not in time, it goes back
// to holding, to try again.
func (r *runner) capture(ctx context.Context, why string) {
	if err := r.n.Capture(ctx, installTimeout); err != nil {
		r.g.capturing = false
		log.Errorf("node set-up: %v", err)
		return
	}
	captureChanges.WithLabelValues("capture").Inc()
	r.held = ""
	log.Infof("capturing the node's pods' DNS: %s", why)
}

// selfCheck runs the self-check and logs each address's result when it changes.
func (r *runner) selfCheck(ctx context.Context) {
	zone := "."
	if in := current.Load(); in != nil {
		zone = in.zone
	}
	for a, err := range runSelfCheck(ctx, r.cfg.Addrs, r.cfg.Port, zone) {
		if ctx.Err() != nil {
			return
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		selfCheckOK.WithLabelValues(a.String()).Set(boolGauge(err == nil))
		if last, ok := r.checked[a]; ok && last == msg {
			continue
		}
		r.checked[a] = msg
		ap := netip.AddrPortFrom(a, r.cfg.Port)
		if err == nil {
			log.Infof("self-check: DNS from the node to %s reaches this server", ap)
			continue
		}
		log.Errorf("self-check: DNS from the node to %s does not reach this server: %v. A socket-level service load balancer "+
			"(Cilium's kube-proxy replacement, or another eBPF one) sends the node's and pods' queries to a ClusterIP straight to a "+
			"kube-dns pod, before any rule of raceguard's sees them: there transparent mode does nothing; use link-local mode "+
			"(deploy/README.md)", ap, err)
	}
}

// forgetSelfCheck drops the self-check results: holding, the node's queries to a ClusterIP go to
// kube-dns through kube-proxy, by design.
func (r *runner) forgetSelfCheck() {
	for a := range r.checked {
		selfCheckOK.DeleteLabelValues(a.String())
	}
	clear(r.checked)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

package nodelocal

import (
	"context"
	"sync"
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

// installTimeout bounds the wait for the servers to listen before the rules go in.
const installTimeout = time.Minute

// acquire is a server instance's startup. The first one checks the node (changing nothing if
// it may not proceed), makes the addresses before the servers bind them, and starts run; a
// reload's instance applies its configuration to the set-up.
func acquire(cfg nodenet.Config) (*nodenet.Node, error) {
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
		stop, done = make(chan struct{}), make(chan struct{})
		go run(n, cfg.Interval, stop, done)
	} else if err := node.Reconfigure(cfg); err != nil {
		return nil, err
	}
	users++
	return node, nil
}

// release is a server instance's shutdown.
func release() {
	mu.Lock()
	defer mu.Unlock()
	if users > 0 {
		users--
	}
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

// run installs the rules once the servers listen, then checks the set-up every interval.
func run(n *nodenet.Node, interval time.Duration, stop, done chan struct{}) {
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
	if err := n.Install(ctx, installTimeout); err != nil {
		log.Errorf("node set-up: %v", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if !n.Ready() {
				if err := n.Install(ctx, interval); err != nil {
					log.Errorf("node set-up: %v", err)
				}
				continue
			}
			n.Check()
		}
	}
}

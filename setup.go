package raceguard

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/autopath"
	"github.com/coredns/coredns/plugin/metrics"
	clog "github.com/coredns/coredns/plugin/pkg/log"

	_ "github.com/raceguard/raceguard/internal/buildinfo" // coredns -version and coredns_raceguard_build_info
	"github.com/raceguard/raceguard/internal/conntrack"
	"github.com/raceguard/raceguard/internal/correlate"
	"github.com/raceguard/raceguard/internal/option"
	"github.com/raceguard/raceguard/internal/resolvconf"
	"github.com/raceguard/raceguard/internal/searchpath"
	"github.com/raceguard/raceguard/internal/stackstart"
	"github.com/raceguard/raceguard/plugin/collapse"
)

var log = clog.NewWithPlugin(pluginName)

func init() { plugin.Register(pluginName, setup) }

func setup(c *caddy.Controller) error {
	rg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	config := dnsserver.GetConfig(c)
	c.OnStartup(stackstart.Acquire) // the process's goroutines start with a query's stack
	c.OnShutdown(stackstart.Release)
	c.OnStartup(func() error {
		p, err := rg.partnersOf(config)
		if err != nil {
			return plugin.Error(pluginName, err)
		}
		return rg.OnStartup(p)
	})
	c.OnShutdown(rg.OnShutdown)

	config.AddPlugin(func(next plugin.Handler) plugin.Handler {
		rg.Next = next
		return rg
	})
	return nil
}

// partnersOf finds what raceguard needs of the other plugins of its server block, config, once
// the server starts and they all exist.
func (rg *RaceGuard) partnersOf(config *dnsserver.Config) (partners, error) {
	p := partners{traced: config.Handler("trace") != nil}
	if m, ok := config.Handler("prometheus").(*metrics.Metrics); ok {
		p.metricsZones = m.ZoneNames
	}
	if rg.search.mode == searchPlugin {
		h := config.Handler(rg.search.plugin)
		if h == nil {
			return p, fmt.Errorf("search: @%s: no such plugin in this server block", rg.search.plugin)
		}
		ap, ok := h.(autopath.AutoPather)
		if !ok {
			return p, fmt.Errorf("search: @%s does not implement the AutoPather interface", rg.search.plugin)
		}
		p.autoPath = ap.AutoPath
	}
	var hasCollapse bool
	p.nodeLocal, hasCollapse = scan(config.Handlers())
	if rg.siblingPrefetch && !hasCollapse {
		log.Infof("sibling_prefetch needs the collapse directive (after cache) in the same server block, to see cache misses: no sibling is prefetched")
	}
	return p, nil
}

// scan reports whether handlers, a server block's, include a NodeLocaler that says the block is
// node-local, and collapse, which calls PrefetchSibling for the misses it resolves.
func scan(handlers []plugin.Handler) (nodeLocal, hasCollapse bool) {
	for _, h := range handlers {
		switch h := h.(type) {
		case NodeLocaler:
			nodeLocal = nodeLocal || h.NodeLocal()
		case *collapse.Collapse:
			hasCollapse = true
		}
	}
	return nodeLocal, hasCollapse
}

// parse reads one raceguard block:
//
//	raceguard [ZONES...] {
//	    search infer | pods | @PLUGIN | RESOLV-CONF | DOMAIN... | off
//	    kubeconfig PATH
//	    cluster_domain DOMAIN...
//	    node_search RESOLV-CONF | DOMAIN... | none
//	    parallel_walk on | off
//	    walk_deadline DURATION
//	    walk_budget RATE [BURST]
//	    max_walks N
//	    node_local on | off
//	    sibling_prefetch on | off
//	    conntrack netlink | procfs [PATH] | off
//	    interval DURATION
//	    window DURATION
//	    fingerprints N
//	    node NAME
//	}
func parse(c *caddy.Controller) (*RaceGuard, error) {
	rg := New()
	zones, seen, err := option.Parse(c, pluginName, rg.parseOption)
	if err != nil {
		return nil, err
	}
	rg.Zones = zones
	rg.search.nodeLocalSet = seen["node_local"]
	if err := rg.check(seen); err != nil {
		return nil, c.Err(err.Error())
	}
	return rg, nil
}

// parseOption applies one block option to rg.
func (rg *RaceGuard) parseOption(name string, args []string) error {
	var err error
	switch name {
	case "search":
		return rg.search.parseSearch(name, args)
	case "cluster_domain":
		rg.search.clusterDomains, err = option.Domains(name, args)
	case "node_search":
		return rg.search.parseNodeSearch(name, args)
	case "kubeconfig":
		if len(args) != 1 {
			return option.Count(name, args, 1)
		}
		rg.search.kubeconfig = args[0]
	case "parallel_walk":
		rg.search.parallel, err = option.Bool(name, args)
	case "walk_deadline":
		rg.search.deadline, err = option.Duration(name, args, 10*time.Millisecond, 5*time.Second)
	case "node_local":
		rg.search.nodeLocal, err = option.Bool(name, args)
	case "walk_budget":
		return parseBudget(&rg.search.budget, name, args)
	case "max_walks":
		rg.search.maxWalks, err = option.Int(name, args, 1, 1<<16)
	case "sibling_prefetch":
		rg.siblingPrefetch, err = option.Bool(name, args)
	case "conntrack":
		return parseConntrack(&rg.conntrack, name, args)
	case "interval":
		rg.conntrack.Interval, err = option.Duration(name, args, 100*time.Millisecond, time.Minute)
	case "window":
		rg.conntrack.Window, err = option.Duration(name, args, 10*time.Second, 24*time.Hour)
	case "fingerprints":
		rg.fingerprintCapacity, err = option.Int(name, args, 1, maxFingerprints)
	case "node":
		if len(args) != 1 {
			return option.Count(name, args, 1)
		}
		if strings.ContainsAny(args[0], "\"\\{}") {
			return fmt.Errorf("%s: invalid value %q", name, args[0])
		}
		rg.conntrack.Node = args[0]
	default:
		return option.Unknown(name)
	}
	return err
}

// check validates the options of one block against each other.
func (rg *RaceGuard) check(seen map[string]bool) error {
	if rg.search.mode == searchOff {
		for _, o := range []string{"parallel_walk", "walk_deadline", "walk_budget", "max_walks", "node_local"} {
			if seen[o] {
				return fmt.Errorf("%s: does not apply to 'search off'", o)
			}
		}
	}
	if rg.search.mode != searchInfer && rg.search.mode != searchPods {
		for _, o := range []string{"cluster_domain", "node_search"} {
			if seen[o] {
				return fmt.Errorf("%s: only applies to 'search infer' and 'search pods'", o)
			}
		}
	}
	if rg.search.mode != searchPods && seen["kubeconfig"] {
		return fmt.Errorf("kubeconfig: only applies to 'search pods'")
	}
	// The correlation needs enough points in its window to see the 5 s retry lag more than once,
	// and no more than a day's worth of one-second points.
	if n := rg.conntrack.Window / rg.conntrack.Interval; n < 20 || n > 86400 {
		return fmt.Errorf("window: invalid value %q: want 20 to 86400 intervals of %s", rg.conntrack.Window, rg.conntrack.Interval)
	}
	return nil
}

// parseSearch reads: search infer | pods | @PLUGIN | RESOLV-CONF | DOMAIN... | off.
// An argument with a slash in it is a file; a domain name never has one.
func (s *searchConfig) parseSearch(name string, args []string) error {
	if len(args) == 0 {
		return option.Count(name, args, 1)
	}
	switch first := args[0]; {
	case first == "infer" || first == "pods" || first == "off":
		if len(args) > 1 {
			return option.Count(name+" "+first, args[1:], 0)
		}
		s.mode = map[string]searchMode{"infer": searchInfer, "pods": searchPods, "off": searchOff}[first]
	case strings.HasPrefix(first, "@"):
		if len(args) > 1 || len(first) == 1 {
			return fmt.Errorf("%s: invalid value %q: want a single @PLUGIN", name, strings.Join(args, " "))
		}
		s.mode, s.plugin = searchPlugin, first[1:]
	case strings.Contains(first, "/"):
		if len(args) > 1 {
			return fmt.Errorf("%s: invalid value %q: want a single resolv.conf path", name, strings.Join(args, " "))
		}
		domains, err := resolvconf.ReadSearch(first)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(domains) == 0 {
			return fmt.Errorf("%s: %q has no search domains", name, first)
		}
		s.mode, s.file, s.domains = searchFixed, first, domains
	default:
		domains, err := option.Domains(name, args)
		if err != nil {
			return err
		}
		s.mode, s.file, s.domains = searchFixed, "", domains
	}
	return nil
}

// parseNodeSearch reads: node_search RESOLV-CONF | DOMAIN... | none.
func (s *searchConfig) parseNodeSearch(name string, args []string) error {
	switch {
	case len(args) == 0:
		return option.Count(name, args, 1)
	case len(args) == 1 && args[0] == "none":
		s.file, s.domains = "", nil
	case strings.Contains(args[0], "/"):
		if len(args) > 1 {
			return fmt.Errorf("%s: invalid value %q: want a single resolv.conf path", name, strings.Join(args, " "))
		}
		// A resolv.conf named in the Corefile must be readable now; it is re-read when it
		// changes, and may then lose its search line.
		if _, err := resolvconf.ReadSearch(args[0]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		s.file, s.domains = args[0], nil
	default:
		domains, err := option.Domains(name, args)
		if err != nil {
			return err
		}
		s.file, s.domains = "", domains
	}
	return nil
}

// parseConntrack reads: conntrack netlink | procfs [PATH] | off, into cfg.
func parseConntrack(cfg *correlate.Config, name string, args []string) error {
	if len(args) == 0 {
		return option.Count(name, args, 1)
	}
	switch src := conntrack.Source(args[0]); src {
	case conntrack.SourceNetlink, conntrack.SourceOff:
		if len(args) > 1 {
			return option.Count(name+" "+args[0], args[1:], 0)
		}
		cfg.Source = src
	case conntrack.SourceProcfs:
		if len(args) > 2 {
			return fmt.Errorf("%s: invalid value %q: want 'procfs [PATH]'", name, strings.Join(args, " "))
		}
		if len(args) == 2 {
			cfg.ProcPath = args[1]
		}
		cfg.Source = src
	default:
		return fmt.Errorf("%s: invalid value %q: want '%s', '%s [PATH]' or '%s'", name, args[0], conntrack.SourceNetlink, conntrack.SourceProcfs, conntrack.SourceOff)
	}
	return nil
}

// parseBudget reads: walk_budget RATE [BURST], walks a second per client and the most at once
// (RATE 0 turns the budget off; BURST is 5 seconds' worth by default).
func parseBudget(b *searchpath.Budget, name string, args []string) error {
	if len(args) == 0 || len(args) > 2 {
		return fmt.Errorf("%s: want 'RATE [BURST]', got %q", name, strings.Join(args, " "))
	}
	rate, err := strconv.ParseFloat(args[0], 64)
	if err != nil || rate < 0 || rate > 1e6 {
		return fmt.Errorf("%s: invalid rate %q: want walks a second from 0 to 1000000", name, args[0])
	}
	burst := 5 * rate
	if len(args) == 2 {
		n, err := option.Int(name, args[1:], 1, 1<<20)
		if err != nil {
			return err
		}
		burst = float64(n)
	}
	*b = searchpath.Budget{Rate: rate, Burst: max(1, burst)}
	return nil
}

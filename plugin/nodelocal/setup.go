package nodelocal

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/raceguard/raceguard/internal/nodenet"
	"github.com/raceguard/raceguard/internal/option"
)

var log = clog.NewWithPlugin(pluginName)

func init() { plugin.Register(pluginName, setup) }

// onceKey marks, in the caddy instance's storage, that a server block of the Corefile already
// has nodelocal: the node has one set-up, so one block owns it.
type onceKey struct{}

func setup(c *caddy.Controller) error {
	nl, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	// The self-check's names go under the probe's name, or the block's zone: either way they
	// reach this block.
	in := &instance{zone: nl.probe}
	if o := origins(c); in.zone == "" && len(o) > 0 {
		in.zone = o[0]
	}
	c.OnStartup(func() error {
		if nl.probe != "" && !nl.cfg.Observe {
			// The chain exists by now (the server is made before the startup callbacks run).
			config := dnsserver.GetConfig(c)
			entry := probeEntry(config.Handlers(), nl)
			if entry == nil {
				return plugin.Error(pluginName, errors.New("nothing after nodelocal in its server block answers queries: the upstream probe has nowhere to go"))
			}
			in.probe = &upstreamProbe{entry: entry, name: nl.probe,
				addr: &net.UDPAddr{IP: nl.cfg.Addrs[0].AsSlice(), Port: int(nl.cfg.Port)}}
		}
		node, err := acquire(nl.cfg, in)
		if err != nil {
			return plugin.Error(pluginName, err)
		}
		nl.node = node
		// Registered now, after every directive's setup registered its own: this runs after
		// health's OnFinalShutdown, which is where the lameduck period passes. The addresses
		// and rules go only once lameduck is over.
		c.OnFinalShutdown(func() error {
			if err := finish(); err != nil {
				return plugin.Error(pluginName, err)
			}
			return nil
		})
		return nil
	})
	c.OnShutdown(func() error {
		release(in)
		return nil
	})

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		nl.Next = next
		return nl
	})
	return nil
}

// parse reads one nodelocal block:
//
//	nodelocal {
//	    interface NAME
//	    health_port PORT
//	    firewall on | off
//	    check_interval DURATION
//	    probe NAME | off
//	    capture on | off
//	}
//
// The addresses are the server block's: its bind directive (which comes before nodelocal in
// plugin.cfg, so its setup has run) and its port.
func parse(c *caddy.Controller) (*NodeLocal, error) {
	if c.Get(onceKey{}) != nil {
		return nil, c.Err("nodelocal: in more than one server block; the node has one set-up, give it to one block")
	}
	c.Set(onceKey{}, true)
	cfg := nodenet.Config{Interface: nodenet.DefaultInterface, Firewall: true, Interval: nodenet.DefaultInterval}
	probe, capture := DefaultProbe, true
	zones, seen, err := option.Parse(c, pluginName, func(name string, args []string) error {
		var err error
		switch name {
		case "interface":
			if len(args) != 1 {
				return option.Count(name, args, 1)
			}
			if l := len(args[0]); l == 0 || l > 15 || args[0] == "lo" {
				return fmt.Errorf("%s: invalid value %q: want a link name of 1 to 15 characters, not lo", name, args[0])
			}
			cfg.Interface = args[0]
		case "health_port":
			var p int
			p, err = option.Int(name, args, 1, 65535)
			cfg.HealthPort = uint16(p)
		case "firewall":
			cfg.Firewall, err = option.Bool(name, args)
		case "check_interval":
			cfg.Interval, err = option.Duration(name, args, 100*time.Millisecond, time.Hour)
		case "probe":
			if len(args) != 1 {
				return option.Count(name, args, 1)
			}
			if args[0] == "off" {
				probe = ""
				break
			}
			probe, err = option.Domain(name, args[0])
		case "capture":
			capture, err = option.Bool(name, args)
		default:
			err = option.Unknown(name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !sameZones(zones, c.ServerBlockKeys) {
		return nil, c.Err("nodelocal: takes no zones; its addresses are the server block's bind addresses")
	}
	config := dnsserver.GetConfig(c)
	for _, h := range config.ListenHosts {
		a, err := netip.ParseAddr(h)
		if err != nil || a.IsUnspecified() {
			return nil, c.Errf("nodelocal: needs the server block to bind its listen addresses (bind 169.254.20.10 [CLUSTER-IP]), got %q", h)
		}
		cfg.Addrs = append(cfg.Addrs, a.Unmap())
	}
	p, err := strconv.ParseUint(config.Port, 10, 16)
	if err != nil {
		return nil, c.Errf("nodelocal: server block port %q", config.Port)
	}
	cfg.Port = uint16(p)
	if cfg.HealthPort == cfg.Port {
		return nil, c.Errf("health_port: invalid value %d: the DNS port", cfg.HealthPort)
	}
	if !capture {
		// Observing: no rules at all, so none for a firewall or a probe to keep.
		cfg.Observe, cfg.Firewall, probe = true, false, ""
		for _, o := range []string{"firewall", "probe"} {
			if seen[o] {
				return nil, c.Errf("%s: not with capture off, which installs no rule and takes no pod's traffic", o)
			}
		}
	}
	if o := origins(c); probe != "" && len(o) > 0 && plugin.Zones(o).Matches(probe) == "" {
		return nil, c.Errf("probe: invalid value %q: not in the server block's zones %v; name one the block sends to its upstream (the cluster's kubernetes.default.svc.DOMAIN), or probe off", probe, origins(c))
	}
	if err := cfg.Check(); err != nil {
		return nil, c.Err(err.Error())
	}
	return &NodeLocal{cfg: cfg, probe: probe}, nil
}

// origins returns the server block's zones.
func origins(c *caddy.Controller) []string {
	return plugin.OriginsFromArgsOrServerBlock(nil, c.ServerBlockKeys)
}

// sameZones reports whether zones are just the server block's own, which option.Parse fills in
// when the directive names none.
func sameZones(zones, keys []string) bool {
	origins := plugin.OriginsFromArgsOrServerBlock(nil, keys)
	if len(origins) != len(zones) {
		return false
	}
	for i := range zones {
		if zones[i] != origins[i] {
			return false
		}
	}
	return true
}

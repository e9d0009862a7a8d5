package collapse

import (
	"fmt"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/raceguard/raceguard/plugin/option"
	"github.com/raceguard/raceguard/plugin/sibling"
)

func init() { plugin.Register(pluginName, setup) }

func setup(c *caddy.Controller) error {
	co, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}

	c.OnStartup(func() error {
		co.Start()
		// raceguard, above cache, prefetches the sibling of every miss collapse resolves.
		if t, ok := dnsserver.GetConfig(c).Handler("raceguard").(sibling.Trigger); ok {
			co.trigger = t
		}
		return nil
	})
	c.OnShutdown(func() error {
		co.Stop()
		return nil
	})

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		co.Next = next
		return co
	})
	return nil
}

// parse reads one collapse block:
//
//	collapse [ZONES...] {
//	    max_keys N
//	    max_waiters N
//	}
func parse(c *caddy.Controller) (*Collapse, error) {
	co := New()

	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++

		zones, err := option.Zones(pluginName, c.RemainingArgs())
		if err != nil {
			return nil, c.Err(err.Error())
		}
		co.Zones = plugin.OriginsFromArgsOrServerBlock(zones, c.ServerBlockKeys)

		seen := map[string]bool{}
		for c.NextBlock() {
			name := c.Val()
			args := c.RemainingArgs()
			if err := option.Once(seen, name); err != nil {
				return nil, c.Err(err.Error())
			}
			switch name {
			case "max_keys":
				co.maxKeys, err = option.Int(name, args, 1, 1<<20)
			case "max_waiters":
				co.maxWaiters, err = option.Int(name, args, 1, 1<<16)
			default:
				err = fmt.Errorf("unknown property '%s'", name)
			}
			if err != nil {
				return nil, c.Err(err.Error())
			}
		}
	}
	return co, nil
}

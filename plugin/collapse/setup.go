package collapse

import (
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	_ "github.com/raceguard/raceguard/internal/buildinfo" // coredns -version and coredns_raceguard_build_info
	"github.com/raceguard/raceguard/internal/option"
)

func init() { plugin.Register(pluginName, setup) }

func setup(c *caddy.Controller) error {
	co, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}

	c.OnStartup(func() error {
		co.Start()
		// As cache finds its ZoneBypassers: the plugins of the block exist once the server starts.
		for _, h := range dnsserver.GetConfig(c).Handlers() {
			if p, ok := h.(SiblingPrefetcher); ok {
				co.prefetcher = p
				break
			}
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
	zones, _, err := option.Parse(c, pluginName, func(name string, args []string) (err error) {
		switch name {
		case "max_keys":
			co.maxKeys, err = option.Int(name, args, 1, 1<<20)
		case "max_waiters":
			co.group.maxWaiters, err = option.Int(name, args, 1, 1<<16)
		default:
			err = option.Unknown(name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	co.Zones = zones
	return co, nil
}

package nodenet

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Config is what a node-local server asks of its node.
type Config struct {
	// Addrs are the addresses the server listens on: the link-local address and, in transparent
	// mode, the kube-dns ClusterIP. Unicast, IPv4 or IPv6, no duplicates.
	Addrs []netip.Addr
	// Port is the DNS port on Addrs, 53.
	Port uint16
	// HealthPort is the health plugin's port on Addrs (the kubelet's probes); 0 when there is none.
	HealthPort uint16
	// Interface is the name of the dummy link the addresses go on where the kernel has dummy links.
	Interface string
	// Firewall adds accept rules for the untracked DNS packets to iptables' filter INPUT and
	// OUTPUT chains, where iptables-nft has them (see firewall_linux.go).
	Firewall bool
	// Interval is how often the set-up is checked and restored.
	Interval time.Duration
	// Observe sets up an observing server: its addresses, every one link-local, and a table that
	// only lists them; it captures no pod's DNS, and has no rules and no firewall accept rules.
	Observe bool
}

// Defaults.
const (
	DefaultInterface = "raceguard"
	DefaultInterval  = 10 * time.Second
	DefaultPort      = 53
)

// Check reports the first thing wrong with c.
func (c Config) Check() error {
	if len(c.Addrs) == 0 {
		return errors.New("no listen address")
	}
	for i, a := range c.Addrs {
		if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			return fmt.Errorf("address %s: want a unicast, non-loopback address", a)
		}
		if slices.Contains(c.Addrs[:i], a) {
			return fmt.Errorf("address %s: given twice", a)
		}
	}
	if c.Observe {
		for _, a := range c.Addrs {
			if !a.IsLinkLocalUnicast() {
				return fmt.Errorf("address %s: an observing server binds only link-local addresses (169.254.0.0/16, fe80::/10): it takes no pod's traffic", a)
			}
		}
	}
	if c.Port == 0 {
		return errors.New("no DNS port")
	}
	if c.HealthPort == c.Port {
		return fmt.Errorf("health port %d: is the DNS port", c.HealthPort)
	}
	if l := len(c.Interface); l == 0 || l > 15 {
		return fmt.Errorf("interface %q: want a name of 1 to 15 characters", c.Interface)
	}
	return nil
}

// Equal reports whether c and o ask for the same set-up.
func (c Config) Equal(o Config) bool {
	return slices.Equal(c.Addrs, o.Addrs) && c.Port == o.Port && c.HealthPort == o.HealthPort &&
		c.Interface == o.Interface && c.Firewall == o.Firewall && c.Interval == o.Interval && c.Observe == o.Observe
}

// v4 and v6 split addrs by family.
func split(addrs []netip.Addr) (v4, v6 []netip.Addr) {
	for _, a := range addrs {
		if a.Is4() || a.Is4In6() {
			v4 = append(v4, a.Unmap())
		} else {
			v6 = append(v6, a)
		}
	}
	return v4, v6
}

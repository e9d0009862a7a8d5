package option

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"

	"github.com/raceguard/raceguard/internal/resolvconf"
)

// Int parses the single argument of option as an integer in [lo, hi].
func Int(option string, args []string, lo, hi int) (int, error) {
	if len(args) != 1 {
		return 0, Count(option, args, 1)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: invalid value %q: want an integer from %d to %d", option, args[0], lo, hi)
	}
	return n, nil
}

// Duration parses the single argument of option as a Go duration in [lo, hi].
func Duration(option string, args []string, lo, hi time.Duration) (time.Duration, error) {
	if len(args) != 1 {
		return 0, Count(option, args, 1)
	}
	d, err := time.ParseDuration(args[0])
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("%s: invalid value %q: want a duration from %s to %s", option, args[0], lo, hi)
	}
	return d, nil
}

// Bool parses the single argument of option as "on" or "off".
func Bool(option string, args []string) (bool, error) {
	if len(args) != 1 {
		return false, Count(option, args, 1)
	}
	switch args[0] {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("%s: invalid value %q: want 'on' or 'off'", option, args[0])
}

// Domains parses args as fully qualified, lower-cased domain names; at least one is required.
func Domains(option string, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: missing value: want one or more domain names", option)
	}
	out := make([]string, 0, len(args))
	for _, a := range args {
		d, err := Domain(option, a)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Domain checks that s is a host-style domain name (see resolvconf.Host; not the root) and returns it
// fully qualified and lower-cased. miekg/dns accepts almost any bytes in a name; a search or
// cluster domain with a '!' in it is a typo, not a zone.
func Domain(option, s string) (string, error) {
	fq, ok := resolvconf.Host(s)
	if !ok || fq == "." {
		return "", fmt.Errorf("%s: invalid value %q: want a domain name", option, s)
	}
	return fq, nil
}

// Count returns the error for an option given the wrong number of arguments.
func Count(option string, args []string, want int) error {
	if len(args) == 0 {
		return fmt.Errorf("%s: missing value", option)
	}
	if want == 0 {
		return fmt.Errorf("%s: unexpected value %q", option, strings.Join(args, " "))
	}
	return fmt.Errorf("%s: want %d value(s), got %d: %q", option, want, len(args), strings.Join(args, " "))
}

// Once returns an error when option has already been seen in this block, and records it otherwise.
func Once(seen map[string]bool, option string) error {
	if seen[option] {
		return fmt.Errorf("%s: given more than once", option)
	}
	seen[option] = true
	return nil
}

// Zones checks and normalises a directive's zone arguments, as CoreDNS does for the server block
// (reverse CIDR notation such as 10.0.0.0/8 included). Unlike plugin.OriginsFromArgsOrServerBlock,
// which silently drops a zone it cannot parse, it fails on one: a typo in a zone must not turn a
// directive off for the names the user meant.
func Zones(directive string, args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for _, a := range args {
		hosts := plugin.Host(a).NormalizeExact()
		if len(hosts) == 0 {
			return nil, fmt.Errorf("%s: invalid zone %q", directive, a)
		}
		for _, h := range hosts {
			if _, ok := resolvconf.Host(h); !ok {
				return nil, fmt.Errorf("%s: invalid zone %q", directive, a)
			}
		}
		out = append(out, hosts...)
	}
	return out, nil
}

// Parse reads the stanzas of directive in c's server block, as every directive of the module
// reads them: the directive at most once, its ZONES (checked by Zones; the server block's when
// none are given), and a block whose options, each allowed once, are handed to set with their
// arguments. It returns the zones and the options seen. Errors carry the Corefile's file and line
// (c.Err) or are plugin.ErrOnce; the directive's setup wraps them once with plugin.Error.
func Parse(c *caddy.Controller, directive string, set func(option string, args []string) error) (zones []string, seen map[string]bool, err error) {
	seen = map[string]bool{}
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, nil, plugin.ErrOnce
		}
		i++

		args, err := Zones(directive, c.RemainingArgs())
		if err != nil {
			return nil, nil, c.Err(err.Error())
		}
		zones = plugin.OriginsFromArgsOrServerBlock(args, c.ServerBlockKeys)

		for c.NextBlock() {
			name := c.Val()
			args := c.RemainingArgs()
			if err := Once(seen, name); err != nil {
				return nil, nil, c.Err(err.Error())
			}
			if err := set(name, args); err != nil {
				return nil, nil, c.Err(err.Error())
			}
		}
	}
	return zones, seen, nil
}

// Unknown returns the error for an option the directive does not have.
func Unknown(option string) error { return fmt.Errorf("unknown property '%s'", option) }

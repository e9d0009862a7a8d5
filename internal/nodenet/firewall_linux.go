package nodenet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// The firewall accept rules. A node firewall that accepts only tracked traffic (INPUT policy
// DROP with "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", as some cloud images ship)
// drops the untracked DNS packets raceguard's NOTRACK makes: they are neither NEW nor
// ESTABLISHED. An accept rule in raceguard's own table cannot help (in nftables a packet any base
// chain drops is dropped, whatever other tables accept), so, as node-cache does with iptables,
// raceguard puts its accept rules first in iptables' own filter INPUT and OUTPUT chains:
//
//	-A INPUT  -d ADDR -p udp -m udp --dport 53 -m comment --comment "raceguard: ..." -j ACCEPT
//	-A OUTPUT -s ADDR -p udp -m udp --sport 53 -m comment --comment "raceguard: ..." -j ACCEPT
//
// (and tcp), written over netlink expression for expression as iptables-nft writes them, so
// that `iptables -S` and kube-proxy's iptables-restore read them back. That is only possible with
// iptables-nft; with iptables-legacy (x_tables, no netlink) raceguard logs what to allow instead.
// Where iptables has no filter chains there is no such firewall and nothing to add. The rules stay
// harmless when raceguard is gone (they accept packets to a port nothing listens on, or that
// kube-proxy's DNAT has already sent elsewhere), so they are not in the owner table: raceguard
// restores them when someone flushes the chain, and removes them on a clean shutdown.

// firewallComment prefixes the comment of every accept rule raceguard adds.
const firewallComment = "raceguard: accept untracked DNS"

// legacyTablesPath lists the iptables-legacy tables in use.
var legacyTablesPath = "/proc/net/ip_tables_names"

// fwRule is one accept rule, named by its comment.
type fwRule struct {
	family  nftables.TableFamily
	chain   string // INPUT or OUTPUT
	comment string
	exprs   []expr.Any
}

// firewallRules returns the accept rules for cfg, in the chains iptables-nft has.
func firewallRules(cfg Config) []fwRule {
	var out []fwRule
	for _, a := range cfg.Addrs {
		fam, offS, offD := nftables.TableFamilyIPv4, uint32(12), uint32(16)
		if a.Is6() {
			fam, offS, offD = nftables.TableFamilyIPv6, 8, 24
		}
		for _, l4 := range []struct {
			name  string
			proto byte
		}{{"udp", unix.IPPROTO_UDP}, {"tcp", unix.IPPROTO_TCP}} {
			for _, dir := range []struct {
				chain       string
				addrOff     uint32
				portOff     uint32
				description string
			}{{"INPUT", offD, 2, "to"}, {"OUTPUT", offS, 0, "from"}} {
				comment := fmt.Sprintf("%s %s %s %s", firewallComment, dir.description, netip.AddrPortFrom(a, cfg.Port), l4.name)
				info := xt.Comment(comment)
				out = append(out, fwRule{family: fam, chain: dir.chain, comment: comment, exprs: []expr.Any{
					// The order iptables-nft writes "-d ADDR -p udp -m udp --dport 53": protocol first.
					&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4.proto}},
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: dir.addrOff, Len: uint32(a.BitLen() / 8)},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: dir.portOff, Len: 2},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, cfg.Port)},
					&expr.Match{Name: "comment", Rev: 0, Info: &info},
					&expr.Counter{},
					&expr.Verdict{Kind: expr.VerdictAccept},
				}})
			}
		}
	}
	return out
}

// iptablesChain returns iptables-nft's filter chain of family, or nil when there is none.
func iptablesChain(c *nftables.Conn, family nftables.TableFamily, name string) (*nftables.Table, *nftables.Chain) {
	t := &nftables.Table{Name: "filter", Family: family}
	ch, err := c.ListChain(t, name)
	if err != nil || ch == nil {
		return nil, nil
	}
	return t, ch
}

// ourFirewallRules returns raceguard's accept rules found in a chain, by comment.
func ourFirewallRules(c *nftables.Conn, t *nftables.Table, ch *nftables.Chain) (map[string][]*nftables.Rule, error) {
	rules, err := c.GetRules(t, ch)
	if err != nil {
		return nil, err
	}
	out := map[string][]*nftables.Rule{}
	for _, r := range rules {
		for _, e := range r.Exprs {
			if m, ok := e.(*expr.Match); ok && m.Name == "comment" {
				if cm, ok := m.Info.(*xt.Comment); ok && strings.HasPrefix(string(*cm), firewallComment) {
					out[string(*cm)] = append(out[string(*cm)], r)
				}
			}
		}
	}
	return out, nil
}

// ensureFirewall puts every missing accept rule of cfg first in its chain, and removes
// duplicates. It returns how many rules it added.
func ensureFirewall(cfg Config) (added int, err error) {
	c, err := nftables.New()
	if err != nil {
		return 0, err
	}
	for _, r := range firewallRules(cfg) {
		t, ch := iptablesChain(c, r.family, r.chain)
		if ch == nil {
			continue
		}
		have, err := ourFirewallRules(c, t, ch)
		if err != nil {
			return added, err
		}
		switch n := len(have[r.comment]); {
		case n == 0:
			c.InsertRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r.exprs})
			added++
		case n > 1:
			for _, dup := range have[r.comment][1:] {
				if err := c.DelRule(dup); err != nil {
					return added, err
				}
			}
		}
		if err := c.Flush(); err != nil {
			return added, permission("iptables filter "+r.chain, err)
		}
	}
	return added, nil
}

// firewallPresent reports whether every accept rule of cfg is in place, where there is a chain
// to put it in; ok is false where there is no iptables-nft filter chain at all.
func firewallPresent(cfg Config) (present, ok bool) {
	c, err := nftables.New()
	if err != nil {
		return false, false
	}
	present = true
	for _, r := range firewallRules(cfg) {
		t, ch := iptablesChain(c, r.family, r.chain)
		if ch == nil {
			continue
		}
		ok = true
		have, err := ourFirewallRules(c, t, ch)
		if err != nil || len(have[r.comment]) == 0 {
			present = false
		}
	}
	return present, ok
}

// removeFirewall deletes every accept rule raceguard added, of any configuration.
func removeFirewall() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	var errs []error
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		for _, chain := range []string{"INPUT", "OUTPUT"} {
			t, ch := iptablesChain(c, fam, chain)
			if ch == nil {
				continue
			}
			have, err := ourFirewallRules(c, t, ch)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, rs := range have {
				for _, r := range rs {
					errs = append(errs, c.DelRule(r))
				}
			}
			errs = append(errs, c.Flush())
		}
	}
	return errors.Join(errs...)
}

// legacyFilter reports whether iptables-legacy has a filter table, which netlink cannot reach.
func legacyFilter() bool {
	b, err := os.ReadFile(legacyTablesPath)
	if err != nil {
		return false
	}
	for _, l := range strings.Fields(string(b)) {
		if l == "filter" {
			return true
		}
	}
	return false
}

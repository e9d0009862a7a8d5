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
// that `iptables -S` and kube-proxy's iptables-restore read them back. First means first: kube-proxy
// in iptables mode inserts its jumps at the top of INPUT and OUTPUT when it starts, and a
// firewall may do the same, above ours; the periodic check then moves ours back above every other
// rule (deleted and inserted again in one transaction, so no packet sees the chain without them),
// and counts it. That is only possible with
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
		if cm := ruleComment(r); cm != "" {
			out[cm] = append(out[cm], r)
		}
	}
	return out, nil
}

// chainPlan is what ensureFirewall changes in one chain.
type chainPlan struct {
	reorder bool     // a rule of another's is above one of ours: ours all go, and back at the top
	missing []string // comments of wanted rules the chain lacks
	dups    []int    // indices of second copies of a rule of ours
}

// planChain compares a chain with what it should hold: have is the comment of each of its rules
// in order ("" for a rule that is not raceguard's), want the comments of raceguard's rules that
// belong in it, which must come before every other rule.
func planChain(have, want []string) chainPlan {
	var p chainPlan
	seen := map[string]bool{}
	foreign := false
	for i, c := range have {
		switch {
		case c == "":
			foreign = true
		case seen[c]:
			p.dups = append(p.dups, i)
		default:
			seen[c] = true
			p.reorder = p.reorder || foreign
		}
	}
	for _, c := range want {
		if !seen[c] {
			p.missing = append(p.missing, c)
		}
	}
	return p
}

// ensureFirewall puts every missing accept rule of cfg first in its chain, moves ours back above
// every other rule where one was put above them, and removes duplicates. It returns how many rules
// it added, and how many it moved back up.
func ensureFirewall(cfg Config) (added, moved int, err error) {
	c, err := nftables.New()
	if err != nil {
		return 0, 0, err
	}
	type chainKey struct {
		family nftables.TableFamily
		chain  string
	}
	var order []chainKey
	byChain := map[chainKey][]fwRule{}
	for _, r := range firewallRules(cfg) {
		k := chainKey{r.family, r.chain}
		if _, ok := byChain[k]; !ok {
			order = append(order, k)
		}
		byChain[k] = append(byChain[k], r)
	}
	for _, k := range order {
		t, ch := iptablesChain(c, k.family, k.chain)
		if ch == nil {
			continue
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return added, moved, err
		}
		have := make([]string, len(rules))
		for i, r := range rules {
			have[i] = ruleComment(r)
		}
		var want []string
		exprs := map[string][]expr.Any{}
		for _, r := range byChain[k] {
			want = append(want, r.comment)
			exprs[r.comment] = r.exprs
		}
		p := planChain(have, want)
		switch {
		case p.reorder:
			// Ours all go and come back at the top, in one transaction.
			for i, r := range rules {
				if have[i] != "" {
					if err := c.DelRule(r); err != nil {
						return added, moved, err
					}
				}
			}
			for i := len(want) - 1; i >= 0; i-- {
				c.InsertRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs[want[i]]})
			}
			moved += len(want) - len(p.missing)
			added += len(p.missing)
		default:
			for _, cm := range p.missing {
				c.InsertRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs[cm]})
			}
			added += len(p.missing)
			for _, i := range p.dups {
				if err := c.DelRule(rules[i]); err != nil {
					return added, moved, err
				}
			}
		}
		if err := c.Flush(); err != nil {
			return added, moved, permission("iptables filter "+k.chain, err)
		}
	}
	return added, moved, nil
}

// ruleComment returns the comment of a rule of raceguard's, or "".
func ruleComment(r *nftables.Rule) string {
	for _, e := range r.Exprs {
		if m, ok := e.(*expr.Match); ok && m.Name == "comment" {
			if cm, ok := m.Info.(*xt.Comment); ok && strings.HasPrefix(string(*cm), firewallComment) {
				return string(*cm)
			}
		}
	}
	return ""
}

// firewallPresent reports whether every accept rule of cfg is in place, above every other rule,
// where there is a chain to put it in; ok is false where there is no iptables-nft filter chain at
// all.
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
		rules, err := c.GetRules(t, ch)
		if err != nil {
			present = false
			continue
		}
		have := make([]string, len(rules))
		for i, rl := range rules {
			have[i] = ruleComment(rl)
		}
		if p := planChain(have, []string{r.comment}); p.reorder || len(p.missing) > 0 {
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

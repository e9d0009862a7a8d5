package nodenet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TableName is the name of raceguard's nftables table (family inet). A second raceguard running
// beside the first, as in a surge rollout, names its own TableName-2, and so on.
const TableName = "raceguard"

// maxTables bounds the raceguard tables one node can have at once.
const maxTables = 8

// nftTableOwner is NFT_TABLE_F_OWNER (Linux 5.12): the table belongs to the netlink socket that
// made it; no other socket may change it, `nft flush ruleset` passes it by, and the kernel deletes
// it when that socket closes, which it does when the process exits for any reason.
const nftTableOwner = 0x2

// ErrNoOwnerTables is returned on kernels without owner tables.
var ErrNoOwnerTables = errors.New("the kernel has no nftables owner tables (NFT_TABLE_F_OWNER, Linux 5.12 and later): " +
	"without them a dead raceguard would leave its NOTRACK rules for hostNetwork clients behind and black-hole their DNS")

// table is raceguard's table, held by the lasting netfilter socket that owns it.
type table struct {
	conn *nftables.Conn // lasting: every change goes over the socket that owns the table
	sock *netlink.Conn  // that socket, for the table's creation (google/nftables v0.3.0 sends table flags as 0)
	t    *nftables.Table
}

// openTable makes raceguard's table: TableName, or the first free TableName-N when another
// raceguard already has one (surge). It is empty until apply.
func openTable() (*table, error) {
	var sock *netlink.Conn
	conn, err := nftables.New(nftables.AsLasting(), nftables.WithSockOptions(func(c *netlink.Conn) error {
		sock = c
		return nil
	}))
	if err != nil {
		return nil, permission("netfilter socket", err)
	}
	exists := func(name string) bool {
		_, err := conn.ListTableOfFamily(name, nftables.TableFamilyINet)
		return err == nil
	}
	for i := 1; i <= maxTables; i++ {
		name := TableName
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		if exists(name) {
			continue // another raceguard's (an owner table of another socket refuses EEXIST's NLM_F_EXCL with EPERM)
		}
		err := newOwnedTable(sock, name)
		if errors.Is(err, unix.EEXIST) || (errors.Is(err, unix.EPERM) && exists(name)) {
			continue // made meanwhile
		}
		if err != nil {
			conn.CloseLasting()
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
				return nil, fmt.Errorf("%w (%v)", ErrNoOwnerTables, err)
			}
			return nil, permission("create table inet "+name, err)
		}
		return &table{conn: conn, sock: sock, t: &nftables.Table{Name: name, Family: nftables.TableFamilyINet}}, nil
	}
	conn.CloseLasting()
	return nil, fmt.Errorf("tables inet %s to %s-%d all exist: too many raceguards on this node", TableName, TableName, maxTables)
}

// newOwnedTable sends one batch with a NEWTABLE (NLM_F_EXCL) carrying the owner flag over sock.
func newOwnedTable(sock *netlink.Conn, name string) error {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_TABLE_NAME, Data: append([]byte(name), 0)},
		{Type: unix.NFTA_TABLE_FLAGS, Data: binary.BigEndian.AppendUint32(nil, nftTableOwner)},
	})
	if err != nil {
		return err
	}
	batch := func(t uint16) netlink.Message {
		return netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(t), Flags: netlink.Request},
			Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES},
		}
	}
	msgs := []netlink.Message{
		batch(unix.NFNL_MSG_BATCH_BEGIN),
		{
			Header: netlink.Header{
				Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWTABLE),
				Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl,
			},
			Data: append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
		},
		batch(unix.NFNL_MSG_BATCH_END),
	}
	if err := sock.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	defer sock.SetReadDeadline(time.Time{})
	if _, err := sock.SendMessages(msgs); err != nil {
		return err
	}
	_, err = sock.Receive() // the NEWTABLE's acknowledgement, or its error
	return err
}

// close deletes the table and closes its socket (which alone would delete it too).
func (t *table) close() error {
	t.conn.DelTable(t.t)
	err := t.conn.Flush()
	t.conn.CloseLasting()
	return err
}

// Rule comments: they name each rule in `nft list ruleset`, and let check recognise the rules.
const (
	commentPods    = "raceguard: DNS to the node-local addresses skips conntrack and DNAT while raceguard listens"
	commentReplies = "raceguard: its replies skip conntrack"
	commentLocal   = "raceguard: hostNetwork clients' DNS skips conntrack and DNAT while raceguard runs"
	commentHealth  = "raceguard: health probes skip conntrack, as node-cache does"
	commentHold    = "raceguard: holding (its upstream does not answer): DNS kube-proxy did not translate is dropped, as if the address were not here"
	commentRefuse  = "raceguard: holding (its upstream does not answer): DNS to the link-local address is refused, its clients ask their next nameserver"
)

// spec is the content of raceguard's table for a Config.
type spec struct {
	sets   map[string][]netip.Addr // addrs4, addrs6: the listen addresses
	chains []*nftables.Chain
	rules  []*nftables.Rule
}

// want builds the table's content for cfg. Capturing, the server takes the pods' DNS:
//
//	table inet raceguard {
//	    flags owner
//	    set addrs4 { type ipv4_addr; elements = { ADDRS } }
//	    chain prerouting {
//	        type filter hook prerouting priority raw; policy accept;
//	        ip daddr @addrs4 udp dport 53 socket wildcard 0 counter notrack
//	        ip daddr @addrs4 tcp dport 53 socket transparent 0 counter notrack
//	    }
//	    chain output {
//	        type filter hook output priority raw; policy accept;
//	        ip saddr @addrs4 udp sport 53 counter notrack
//	        ip saddr @addrs4 tcp sport 53 counter notrack
//	        ip daddr @addrs4 udp dport 53 counter notrack
//	        ip daddr @addrs4 tcp dport 53 counter notrack
//	        ip daddr @addrs4 tcp dport HEALTH counter notrack
//	        ip saddr @addrs4 tcp sport HEALTH counter notrack
//	    }
//	}
//
// and the same with ip6 and addrs6 for IPv6 addresses. See the package documentation for why
// each rule is there and what condition keeps it harmless when raceguard is gone.
//
// Holding (its upstream does not answer, or the servers do not listen yet), the server takes no
// pod's DNS: there is no NOTRACK rule, so kube-proxy's DNAT sends the pods' queries to kube-dns as
// without raceguard. But the addresses are on the node, and a query to the ClusterIP that
// kube-proxy has not translated (it has not programmed the node yet, after a reboot) would be
// delivered to the server, which could not answer it; so such a query is dropped, as it would be
// were the address not here, and the client's retry takes kube-proxy's path once there is one.
// A query to a link-local address is refused instead, so that its client asks its next
// nameserver (kube-dns, in link-local mode) at once:
//
//	chain input {
//	    type filter hook input priority filter; policy accept;
//	    ip daddr CLUSTER-IP udp dport 53 ct state != untracked counter drop
//	    ip daddr CLUSTER-IP tcp dport 53 ct state != untracked counter drop
//	    ip daddr 169.254.20.10 udp dport 53 ct state != untracked counter reject
//	    ip daddr 169.254.20.10 tcp dport 53 ct state != untracked counter reject with tcp reset
//	}
//
// A packet another raceguard's table made untracked (the old pod of a surge rollout, still
// capturing) is left to that raceguard. An observing server's table has the address sets alone.
func (t *table) want(cfg Config, capture bool) spec {
	v4, v6 := split(cfg.Addrs)
	s := spec{sets: map[string][]netip.Addr{}}
	for name, addrs := range map[string][]netip.Addr{"addrs4": v4, "addrs6": v6} {
		if len(addrs) > 0 {
			s.sets[name] = addrs
		}
	}
	if cfg.Observe {
		return s
	}
	rule := func(c *nftables.Chain, comment string, exprs ...expr.Any) {
		s.rules = append(s.rules, &nftables.Rule{Table: t.t, Chain: c, Exprs: exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, comment)})
	}
	const sport, dport = 0, 2
	if !capture {
		in := &nftables.Chain{Name: "input", Table: t.t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: ptr(nftables.ChainPolicyAccept)}
		s.chains = []*nftables.Chain{in}
		tracked := []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitUNTRACKED), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)},
			&expr.Counter{},
		}
		for _, a := range cfg.Addrs {
			for _, l4 := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
				comment, verdict := commentHold, expr.Any(&expr.Verdict{Kind: expr.VerdictDrop})
				if a.IsLinkLocalUnicast() {
					comment, verdict = commentRefuse, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}
					if l4 == unix.IPPROTO_TCP {
						verdict = &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}
					}
				}
				rule(in, comment, slices.Concat(addrIs(a, true), portIs(l4, dport, cfg.Port), tracked, []expr.Any{verdict})...)
			}
		}
		return s
	}

	pre := &nftables.Chain{Name: "prerouting", Table: t.t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: ptr(nftables.ChainPolicyAccept)}
	out := &nftables.Chain{Name: "output", Table: t.t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityRaw, Policy: ptr(nftables.ChainPolicyAccept)}
	s.chains = []*nftables.Chain{pre, out}
	notrack := func(c *nftables.Chain, comment string, exprs ...expr.Any) {
		rule(c, comment, append(exprs, &expr.Counter{}, &expr.Notrack{})...)
	}
	for _, fam := range []struct {
		set   string
		addrs []netip.Addr
		proto byte
		saddr uint32 // offset in the network header
		daddr uint32
		len   uint32
	}{{"addrs4", v4, unix.NFPROTO_IPV4, 12, 16, 4}, {"addrs6", v6, unix.NFPROTO_IPV6, 8, 24, 16}} {
		if len(fam.addrs) == 0 {
			continue
		}
		addr := func(offset uint32) []expr.Any {
			return []expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam.proto}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: fam.len},
				&expr.Lookup{SourceRegister: 1, SetName: fam.set},
			}
		}
		// Only while a socket takes the packet: with raceguard gone, kube-proxy's DNAT takes the
		// query to kube-dns as before. UDP: a socket bound to the very address, not a wildcard
		// one. TCP: any socket, because the lookup also finds the handshake's request socket and
		// a time-wait socket, which have no "wildcard" to report (the expression breaks), and the
		// handshake's last ACK must skip conntrack like the rest, or kube-proxy's DNAT would
		// send it to kube-dns; a wildcard TCP listener on the port cannot coexist with
		// raceguard's listener on the address anyway.
		notrack(pre, commentPods, slices.Concat(addr(fam.daddr), portIs(unix.IPPROTO_UDP, dport, cfg.Port), []expr.Any{
			&expr.Socket{Key: expr.SocketKeyWildcard, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}},
		})...)
		notrack(pre, commentPods, slices.Concat(addr(fam.daddr), portIs(unix.IPPROTO_TCP, dport, cfg.Port), []expr.Any{
			&expr.Socket{Key: expr.SocketKeyTransparent, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}},
		})...)
		for _, l4 := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			notrack(out, commentReplies, slices.Concat(addr(fam.saddr), portIs(l4, sport, cfg.Port))...)
		}
		for _, l4 := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			notrack(out, commentLocal, slices.Concat(addr(fam.daddr), portIs(l4, dport, cfg.Port))...)
		}
		if cfg.HealthPort != 0 {
			notrack(out, commentHealth, slices.Concat(addr(fam.daddr), portIs(unix.IPPROTO_TCP, dport, cfg.HealthPort))...)
			notrack(out, commentHealth, slices.Concat(addr(fam.saddr), portIs(unix.IPPROTO_TCP, sport, cfg.HealthPort))...)
		}
	}
	return s
}

// addrIs matches packets to (dst) or from a, of a's family.
func addrIs(a netip.Addr, dst bool) []expr.Any {
	proto, off := byte(unix.NFPROTO_IPV4), uint32(12)
	if a.Is6() {
		proto, off = unix.NFPROTO_IPV6, 8
	}
	if dst {
		off += uint32(a.BitLen() / 8)
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(a.BitLen() / 8)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
	}
}

// portIs matches l4 packets whose port at offset (0 source, 2 destination) is p.
func portIs(l4 byte, offset uint32, p uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, p)},
	}
}

func ptr[T any](v T) *T { return &v }

// tableFlags returns t's flags as the kernel sent them: google/nftables v0.3.0 decodes the
// attribute in host byte order, and the kernel sends it in network byte order.
func tableFlags(t *nftables.Table) uint32 {
	b := binary.NativeEndian.AppendUint32(nil, t.Flags)
	return binary.BigEndian.Uint32(b)
}

// apply replaces the table's content with s in one batch, so the node never sees a half-made
// table.
func (t *table) apply(s spec) error {
	c := t.conn
	c.FlushTable(t.t)
	sets := map[string]*nftables.Set{}
	for _, name := range []string{"addrs4", "addrs6"} {
		addrs, ok := s.sets[name]
		if !ok {
			continue
		}
		set := &nftables.Set{Table: t.t, Name: name, KeyType: nftables.TypeIPAddr}
		if name == "addrs6" {
			set.KeyType = nftables.TypeIP6Addr
		}
		if err := c.AddSet(set, nil); err != nil {
			return err
		}
		c.FlushSet(set)
		var elems []nftables.SetElement
		for _, a := range addrs {
			elems = append(elems, nftables.SetElement{Key: a.AsSlice()})
		}
		if err := c.SetAddElements(set, elems); err != nil {
			return err
		}
		sets[name] = set
	}
	// Chains of another state (prerouting and output when holding, input when capturing) go.
	have, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return permission("list chains of table inet "+t.t.Name, err)
	}
	for _, ch := range have {
		if ch.Table.Name == t.t.Name && !slices.ContainsFunc(s.chains, func(w *nftables.Chain) bool { return w.Name == ch.Name }) {
			c.DelChain(&nftables.Chain{Name: ch.Name, Table: t.t})
		}
	}
	for _, ch := range s.chains {
		c.AddChain(ch)
	}
	for _, r := range s.rules {
		for _, e := range r.Exprs {
			if l, ok := e.(*expr.Lookup); ok {
				l.SetID = sets[l.SetName].ID
			}
		}
		c.AddRule(r)
	}
	if err := c.Flush(); err != nil {
		return permission("install table inet "+t.t.Name, err)
	}
	return nil
}

// intact reports whether the kernel's table holds what s asks for: the sets with their elements,
// and in each chain the rules, recognised by their comments.
func (t *table) intact(s spec) (bool, error) {
	c := t.conn
	for name, addrs := range s.sets {
		set, err := c.GetSetByName(t.t, name)
		if err != nil {
			return false, nil
		}
		elems, err := c.GetSetElements(set)
		if err != nil {
			return false, err
		}
		var got []netip.Addr
		for _, e := range elems {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				got = append(got, a)
			}
		}
		if !sameAddrs(got, addrs) {
			return false, nil
		}
	}
	for _, ch := range s.chains {
		var want []string
		for _, r := range s.rules {
			if r.Chain == ch {
				cm, _ := userdata.GetString(r.UserData, userdata.TypeComment)
				want = append(want, cm)
			}
		}
		rules, err := c.GetRules(t.t, ch)
		if err != nil {
			return false, nil // no such chain
		}
		var got []string
		for _, r := range rules {
			cm, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			got = append(got, cm)
		}
		if !slices.Equal(got, want) {
			return false, nil
		}
	}
	return true, nil
}

func sameAddrs(a, b []netip.Addr) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	return slices.Equal(a, b)
}

// claims returns, for each address, the raceguard tables of the namespace that list it: proof
// that a live raceguard serves it, since an owner table dies with its process.
func claims() (map[netip.Addr][]string, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, err
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, permission("list nftables tables", err)
	}
	out := map[netip.Addr][]string{}
	for _, tb := range tables {
		if tb.Name != TableName && !strings.HasPrefix(tb.Name, TableName+"-") || tableFlags(tb)&nftTableOwner == 0 {
			continue
		}
		for _, name := range []string{"addrs4", "addrs6"} {
			set, err := c.GetSetByName(tb, name)
			if err != nil {
				continue
			}
			elems, err := c.GetSetElements(set)
			if err != nil {
				return nil, err
			}
			for _, e := range elems {
				if a, ok := netip.AddrFromSlice(e.Key); ok {
					out[a] = append(out[a], tb.Name)
				}
			}
		}
	}
	return out, nil
}

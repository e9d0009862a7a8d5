package nodenet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkKind says where the listen addresses are.
type LinkKind string

// The two places.
const (
	// LinkDummy is a dummy link of raceguard's own, as NodeLocal DNSCache's nodelocaldns.
	LinkDummy LinkKind = "dummy"
	// LinkLo is the loopback link, for kernels built without dummy links (CONFIG_DUMMY unset).
	LinkLo LinkKind = "lo"
)

// The marks raceguard leaves on what it creates, so that a later raceguard (after a restart, a
// crash or beside it in a surge rollout) can tell its addresses from an administrator's, and never
// removes the latter: the dummy link's alias, and the label of an IPv4 address on lo (labels must
// start with the link's name). IPv6 addresses have no label: one raceguard added to lo is only
// known as raceguard's to the process that added it.
const (
	linkAlias = "raceguard node-local DNS addresses"
	loLabel   = "lo:raceguard"
)

// ensureLink returns the link the addresses go on: the dummy link name, made if missing, or lo
// where the kernel has no dummy links. A dummy link of that name made by someone else is used as
// it is, and never removed.
func ensureLink(name string) (netlink.Link, LinkKind, error) {
	l, err := netlink.LinkByName(name)
	if err == nil {
		if l.Type() != "dummy" {
			return nil, "", fmt.Errorf("link %s exists and is a %s link, not a dummy link", name, l.Type())
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			if err := netlink.LinkSetUp(l); err != nil {
				return nil, "", permission("link "+name+" up", err)
			}
		}
		return l, LinkDummy, nil
	}
	var notFound netlink.LinkNotFoundError
	if !errors.As(err, &notFound) {
		return nil, "", permission("link "+name, err)
	}
	err = netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}})
	if errors.Is(err, unix.EOPNOTSUPP) {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return nil, "", fmt.Errorf("link lo: %w", err)
		}
		return lo, LinkLo, nil
	}
	if err != nil {
		return nil, "", permission("add dummy link "+name, err)
	}
	if l, err = netlink.LinkByName(name); err != nil {
		return nil, "", fmt.Errorf("link %s: %w", name, err)
	}
	if err := netlink.LinkSetAlias(l, linkAlias); err != nil {
		return nil, "", fmt.Errorf("link %s alias: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, "", fmt.Errorf("link %s up: %w", name, err)
	}
	return l, LinkDummy, nil
}

// nodeAddr is an address found on the node.
type nodeAddr struct {
	link  netlink.Link
	label string
}

// nodeAddrs returns the node's addresses among want.
func nodeAddrs(want []netip.Addr) (map[netip.Addr]nodeAddr, error) {
	all, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := map[netip.Addr]nodeAddr{}
	for _, a := range all {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !containsAddr(want, ip.Unmap()) {
			continue
		}
		l, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil {
			continue // the link went away meanwhile
		}
		out[ip.Unmap()] = nodeAddr{link: l, label: a.Label}
	}
	return out, nil
}

// raceguards reports whether an address found on the node was made by a raceguard.
func (a nodeAddr) raceguards(ip netip.Addr) bool {
	switch {
	case a.link.Type() == "dummy" && a.link.Attrs().Alias == linkAlias:
		return true
	case a.link.Attrs().Name == "lo" && ip.Is4():
		return a.label == loLabel
	}
	return false
}

// addAddr puts ip on link as a host route (/32 or /128). An IPv6 address skips duplicate
// address detection: until DAD ends it is tentative and cannot be bound.
func addAddr(link netlink.Link, kind LinkKind, ip netip.Addr) error {
	bits := ip.BitLen()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
	if ip.Is4() && kind == LinkLo {
		a.Label = loLabel
	}
	if ip.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return permission(fmt.Sprintf("add %s to %s", ip, link.Attrs().Name), err)
	}
	return nil
}

// delAddr removes ip from link.
func delAddr(link netlink.Link, ip netip.Addr) error {
	bits := ip.BitLen()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
	if err := netlink.AddrDel(link, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("remove %s from %s: %w", ip, link.Attrs().Name, err)
	}
	return nil
}

// delLinkIfEmpty removes raceguard's dummy link name once no address is left on it.
func delLinkIfEmpty(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil || l.Type() != "dummy" || l.Attrs().Alias != linkAlias {
		return nil // gone already, or not raceguard's
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if !a.IP.IsLinkLocalUnicast() || a.IP.To4() != nil { // the kernel's own fe80:: does not count
			return nil
		}
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("remove link %s: %w", name, err)
	}
	return nil
}

package lab

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// AddPod makes another pod on the node: a namespace of its own with an IPv4 address of its own on
// a veth to the node, and returns the namespace's name and the address. The node does no
// reverse-path filtering on its link, as on the bridge and flannel set-ups where a pod can send
// with another pod's address. Close removes it.
func (l *Lab) AddPod(name string) (ns, addr string, err error) {
	n := len(l.pods) + 1
	ns, dev := l.Node[:len(l.Node)-len("node")]+name, "p"+strconv.Itoa(n)
	gw, addr := fmt.Sprintf("10.32.%d.1", 100+n), fmt.Sprintf("10.32.%d.2", 100+n)
	l.pods = append(l.pods, ns) // Close removes it, whether or not it was made
	if err := AddNamespace(ns); err != nil {
		return "", "", err
	}
	for _, s := range [][]string{
		{"-n", l.Node, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", l.Node, "addr", "add", gw + "/24", "dev", dev},
		{"-n", l.Node, "link", "set", dev, "up"},
		{"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "via", gw},
	} {
		if err := ip(s...); err != nil {
			return "", "", err
		}
	}
	if _, err := nsExec(l.Node, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter && echo 0 > /proc/sys/net/ipv4/conf/"+dev+"/rp_filter"); err != nil {
		return "", "", err
	}
	return ns, addr, nil
}

// SpoofUDP sends payload from namespace ns in one IPv4 UDP packet whose source is from, a
// address of someone else: no answer comes back to the sender.
func SpoofUDP(ns string, from, to netip.AddrPort, payload []byte) error {
	if !from.Addr().Is4() || !to.Addr().Is4() {
		return fmt.Errorf("spoof: IPv4 only, got %s -> %s", from, to)
	}
	return Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, udpPacket(from, to, payload), 0, &unix.SockaddrInet4{Addr: to.Addr().As4()})
	})
}

// udpPacket returns an IPv4 header and a UDP datagram of payload from src to dst.
func udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	const ipLen, udpLen = 20, 8
	b := make([]byte, ipLen+udpLen+len(payload))
	ip, udp := b[:ipLen], b[ipLen:]
	ip[0] = 0x45 // version 4, 5 words
	binary.BigEndian.PutUint16(ip[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(ip[6:], ipFlagDF)
	ip[8] = 64 // TTL
	ip[9] = unix.IPPROTO_UDP
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])

	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen+len(payload)))
	copy(udp[udpLen:], payload)
	// The checksum covers the pseudo-header (source, destination, protocol, UDP length) and the
	// datagram.
	pseudo := make([]byte, 0, 12+len(udp))
	pseudo = append(pseudo, s4[:]...)
	pseudo = append(pseudo, d4[:]...)
	pseudo = append(pseudo, 0, unix.IPPROTO_UDP)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
	pseudo = append(pseudo, udp...)
	sum := checksum(pseudo)
	if sum == 0 {
		sum = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return b
}

package nodenet

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A socket is a UDP socket or a listening TCP socket bound to a DNS address of the node, as
// sock_diag reports it. sock_diag needs no capability and sees every socket of the network
// namespace, whichever process (or container) holds it.
type socket struct {
	proto string         // "udp" or "tcp"
	local netip.AddrPort // the bound address; unspecified for a wildcard bind
	inode uint32
	uid   uint32
}

func (s socket) String() string { return s.proto + " " + s.local.String() }

// tcpListen is the kernel's TCP_LISTEN state.
const tcpListen = 10

// sockets returns the UDP sockets and listening TCP sockets of the namespace bound to port on one
// of addrs or on the wildcard address, which receives their packets as well. A UDP socket
// connected to a peer is a client's, not a server's, and is left out.
func sockets(port uint16, addrs []netip.Addr) ([]socket, error) {
	var out []socket
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		for _, proto := range []string{"udp", "tcp"} {
			dump := netlink.SocketDiagUDP
			if proto == "tcp" {
				dump = netlink.SocketDiagTCP
			}
			socks, err := dump(fam)
			if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
				return nil, fmt.Errorf("sock_diag %s: %w", proto, err)
			}
			for _, s := range socks {
				if s.ID.SourcePort != port || (proto == "tcp" && s.State != tcpListen) {
					continue
				}
				if d, ok := netip.AddrFromSlice(s.ID.Destination); ok && !d.Unmap().IsUnspecified() {
					continue
				}
				a, ok := netip.AddrFromSlice(s.ID.Source)
				if !ok {
					continue
				}
				a = a.Unmap()
				if !a.IsUnspecified() && !containsAddr(addrs, a) {
					continue
				}
				out = append(out, socket{proto: proto, local: netip.AddrPortFrom(a, port), inode: s.INode, uid: s.UID})
			}
		}
	}
	return out, nil
}

// covers reports whether a socket bound to s.local receives packets sent to a.
func (s socket) covers(a netip.Addr) bool {
	l := s.local.Addr()
	if !l.IsUnspecified() {
		return l == a
	}
	// 0.0.0.0 receives IPv4; [::] receives both unless IPV6_V6ONLY, which sock_diag does not show:
	// count it as holding both.
	return l.Is6() || a.Is4()
}

func containsAddr(addrs []netip.Addr, a netip.Addr) bool {
	for _, x := range addrs {
		if x.Unmap() == a {
			return true
		}
	}
	return false
}

// ownSockets maps the inode of each socket this process holds to one of its descriptors.
func ownSockets() (map[uint32]int, error) {
	const fdDir = "/proc/self/fd"
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	out := map[uint32]int{}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ino, ok := socketInode(filepath.Join(fdDir, e.Name())); ok {
			out[ino] = fd
		}
	}
	return out, nil
}

// socketInode reads a /proc/PID/fd/N link of the form socket:[INODE].
func socketInode(link string) (uint32, bool) {
	target, err := os.Readlink(link)
	if err != nil || !strings.HasPrefix(target, "socket:[") || !strings.HasSuffix(target, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(target[len("socket:["):len(target)-1], 10, 32)
	return uint32(n), err == nil
}

// maxProcScan bounds the processes holder looks at.
const maxProcScan = 100000

// holder names the process that holds the socket with inode, as far as this process can see it:
// in a container without the host's PID namespace, other containers' processes are invisible.
func holder(s socket) string {
	procs, _ := os.ReadDir("/proc")
	for i, p := range procs {
		if i >= maxProcScan {
			break
		}
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if ino, ok := socketInode(filepath.Join("/proc", p.Name(), "fd", fd.Name())); ok && ino == s.inode {
				comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				return fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm)))
			}
		}
	}
	return fmt.Sprintf("a process this one cannot see (uid %d, socket inode %d; run with the host's PID namespace to name it)", s.uid, s.inode)
}

// ipvsPath is the kernel's list of IPVS virtual services.
var ipvsPath = "/proc/net/ip_vs"

// ipvsHolds reports the IPVS virtual services (kube-proxy in IPVS mode) on port of one of addrs:
// IPVS takes their packets at the input hook, before any socket could get them.
func ipvsHolds(port uint16, addrs []netip.Addr) ([]string, error) {
	f, err := os.Open(ipvsPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no IPVS in this kernel
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseIPVS(bufio.NewScanner(f), port, addrs), nil
}

// parseIPVS reads /proc/net/ip_vs: service lines are "UDP  0A60000A:0035 rr" (IPv4, hex) or
// "UDP  [fd00:0000:...:000a]:0035 rr" (IPv6).
func parseIPVS(s *bufio.Scanner, port uint16, addrs []netip.Addr) []string {
	var out []string
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 || (f[0] != "UDP" && f[0] != "TCP") {
			continue
		}
		i := strings.LastIndexByte(f[1], ':')
		if i < 0 {
			continue
		}
		p, err := strconv.ParseUint(f[1][i+1:], 16, 16)
		if err != nil || uint16(p) != port {
			continue
		}
		host := f[1][:i]
		var a netip.Addr
		if strings.HasPrefix(host, "[") {
			a, err = netip.ParseAddr(strings.Trim(host, "[]"))
		} else {
			var v uint64
			v, err = strconv.ParseUint(host, 16, 32)
			a = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		}
		if err == nil && containsAddr(addrs, a) {
			out = append(out, strings.ToLower(f[0])+" "+netip.AddrPortFrom(a, port).String())
		}
	}
	return out
}

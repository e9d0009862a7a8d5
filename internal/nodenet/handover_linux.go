package nodenet

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Handing the addresses over to the new pod of a surge rollout, without losing a query.
//
// Both pods hold a UDP socket on each address in one SO_REUSEPORT group, and the kernel hashes
// each client's packets to one of them. CoreDNS stops a server by no longer reading its socket,
// waiting for the queries in flight, then closing it (miekg/dns's ShutdownContext): whatever the
// kernel queues on the old pod's socket in between is dropped with it, and that client waits for
// its resolver's timeout (5 s for glibc) before it asks again. So, before the servers stop, the
// old pod connects each of its UDP sockets to the socket's own address: the kernel's reuseport
// choice passes over connected sockets, new queries all go to the new pod's, and no reply of a
// client ever matches the connection. The old server still reads, and answers, what was queued
// (a reply names its client, which Linux allows on a connected UDP socket); handOver returns
// once nothing is queued on them, bounded by drainTimeout.
//
// TCP is not handed over: a connection still in the old listener's accept queue when it closes
// is reset (unless net.ipv4.tcp_migrate_req is set), and its client asks again at once.

// drainTimeout bounds the wait for the old sockets' queues to empty; drainPoll is how often they
// are looked at. inFlight is how long a packet the kernel was delivering while the sockets were
// connected may take to reach a queue.
const (
	drainTimeout = 2 * time.Second
	drainPoll    = 10 * time.Millisecond
	inFlight     = 20 * time.Millisecond
)

// handOver takes this process's UDP sockets among socks (own: this process's, by inode) out of
// the kernel's choice for new queries and waits until what is queued on them has been read. It
// returns how many sockets it took out.
func handOver(socks []socket, own map[uint32]int) (int, error) {
	var (
		inodes = map[uint32]bool{}
		errs   []error
	)
	for _, s := range socks {
		fd, ok := own[s.inode]
		if s.proto != "udp" || !ok || !udpPeer(socks, own, s.local.Addr()) {
			continue
		}
		if err := connectToSelf(fd, s.inode); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			continue
		}
		inodes[s.inode] = true
	}
	if len(inodes) == 0 {
		return 0, errors.Join(errs...)
	}
	time.Sleep(inFlight)
	for deadline := time.Now().Add(drainTimeout); ; time.Sleep(drainPoll) {
		q, err := queued(inodes)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if q == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("%d bytes still queued after %s", q, drainTimeout))
			break
		}
	}
	return len(inodes), errors.Join(errs...)
}

// udpPeer reports whether another process's UDP socket among socks receives what is sent to a:
// a socket is taken out only where another takes its queries (connected, the last one would
// leave its clients a port unreachable).
func udpPeer(socks []socket, own map[uint32]int, a netip.Addr) bool {
	for _, p := range socks {
		if _, mine := own[p.inode]; !mine && p.proto == "udp" && p.covers(a) {
			return true
		}
	}
	return false
}

// connectToSelf connects the UDP socket open as fd, which must still be the socket with inode,
// to its own address. It works on a duplicate of fd, so that a concurrent close of fd cannot make
// it connect another socket.
func connectToSelf(fd int, inode uint32) error {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dup)
	var st unix.Stat_t
	if err := unix.Fstat(dup, &st); err != nil {
		return err
	}
	if st.Ino != uint64(inode) {
		return errors.New("its descriptor was closed meanwhile")
	}
	sa, err := unix.Getsockname(dup)
	if err != nil {
		return err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		if a.Addr == [4]byte{} {
			a.Addr = [4]byte{127, 0, 0, 1}
		}
	case *unix.SockaddrInet6:
		if a.Addr == [16]byte{} {
			a.Addr = netip.IPv6Loopback().As16()
		}
	default:
		return fmt.Errorf("not an IP socket: %T", sa)
	}
	return unix.Connect(dup, sa)
}

// queued returns the bytes waiting in the receive queues of the UDP sockets with inodes.
func queued(inodes map[uint32]bool) (uint64, error) {
	var sum uint64
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := netlink.SocketDiagUDP(fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return 0, fmt.Errorf("sock_diag udp: %w", err)
		}
		for _, s := range socks {
			if inodes[s.INode] {
				sum += uint64(s.RQueue)
			}
		}
	}
	return sum, nil
}

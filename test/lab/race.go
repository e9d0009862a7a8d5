package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// The conntrack race generators: a UDP pair race (clash_resolve) and a SYN race (insert_failed,
// drop), as the lab study of this project measured them on this kernel. Both need the two
// packets of a pair inside the node's conntrack at the same time, on two CPUs: on veth the first
// packet of a pair is otherwise confirmed, in the sender's own softirq, before the second is
// sent. So each pair is sent by two threads pinned to CPU 0 and CPU 1, released together by a
// spin barrier, with raw system calls (a net.Conn's writes take a lock and would serialise them).

// RaceName is the name UDPPairRace asks A and AAAA for. It is in the lab's cluster zone, so
// CoreDNS answers it at once, without the upstream.
const RaceName = "kubernetes.default.svc.cluster.local."

// Bounds of the race generators.
const (
	raceTimeLimit  = 60 * time.Second      // a whole race
	replyTimeout   = time.Second           // the replies of one UDP pair
	barrierTimeout = 50 * time.Millisecond // one thread waiting for the other at the barrier
	roundTimeout   = 2 * time.Second       // both threads sending one pair
	noAnswerPairs  = 10                    // first pairs without any answer before giving up
)

// The SYNs: source ports synPortBase + [0, synPortRange), distinct within a race, so a race has at
// most synPortRange pairs.
const (
	synPortBase  = 20000
	synPortRange = 40000
	raceMaxPairs = synPortRange
	tcpFlagSYN   = 0x02
	ipFlagDF     = 0x4000
	synWindow    = 64240 // Linux's default
)

// RaceResult is the outcome of a UDPPairRace.
type RaceResult struct {
	Pairs        int // pairs sent
	BothAnswered int // pairs whose A and AAAA queries were both answered
	OnlyA        int // pairs where only the A query was answered
	OnlyAAAA     int // pairs where only the AAAA query was answered
	None         int // pairs with no answer
	Elapsed      time.Duration
}

// UDPPairRace sends n A+AAAA query pairs from namespace ns to dst (ip:port) on one connected UDP
// socket per pair, the two queries sent at the same instant from two threads pinned to CPU 0 and
// CPU 1. It returns how many pairs got both answers, and how long it took. Each pair waits at most
// a second for its replies; the race stops with an error after a minute, or when its first ten
// pairs get no answer at all. Without CPUs 0 and 1 it returns an error wrapping ErrUnavailable.
func UDPPairRace(ns, dst string, n int) (res RaceResult, err error) {
	ap, err := netip.ParseAddrPort(dst)
	if err != nil {
		return res, fmt.Errorf("udp race: %w", err)
	}
	if n < 0 || n > raceMaxPairs {
		return res, fmt.Errorf("udp race: want 0 to %d pairs, got %d", raceMaxPairs, n)
	}

	var queries [2][]byte
	for i, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg).SetQuestion(RaceName, qtype)
		if queries[i], err = m.Pack(); err != nil {
			return res, fmt.Errorf("udp race: %w", err)
		}
	}
	var fd int // the pair's socket; written before each round, which orders it before the sends
	p, err := startPinned(func(cpu int) error {
		_, err := unix.Write(fd, queries[cpu])
		return err
	})
	if err != nil {
		return res, fmt.Errorf("udp race: %w", err)
	}
	defer p.stop()

	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	for i := range n {
		if time.Since(start) > raceTimeLimit {
			return res, fmt.Errorf("udp race: time limit %s reached after %d of %d pairs", raceTimeLimit, i, n)
		}
		if fd, err = udpSocket(ns, ap); err != nil {
			return res, fmt.Errorf("udp race: %w", err)
		}
		ids := [2]uint16{uint16(rand.N(1 << 16)), 0}
		ids[1] = ids[0] + 1
		for q := range queries {
			binary.BigEndian.PutUint16(queries[q], ids[q])
		}
		if err := p.round(); err != nil {
			unix.Close(fd)
			return res, fmt.Errorf("udp race: pair %d: %w", i, err)
		}
		got := readReplies(fd, ids, replyTimeout)
		unix.Close(fd)

		res.Pairs++
		switch got {
		case [2]bool{true, true}:
			res.BothAnswered++
		case [2]bool{true, false}:
			res.OnlyA++
		case [2]bool{false, true}:
			res.OnlyAAAA++
		default:
			res.None++
		}
		if res.Pairs == noAnswerPairs && res.None == noAnswerPairs {
			return res, fmt.Errorf("udp race: no answer from %s to the first %d pairs", dst, noAnswerPairs)
		}
	}
	return res, nil
}

// udpSocket returns a UDP socket made in namespace ns and connected to ap.
func udpSocket(ns string, ap netip.AddrPort) (fd int, err error) {
	family, sa := sockaddr(ap)
	err = Do(ns, func() error {
		if fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		if err = unix.Connect(fd, sa); err != nil {
			unix.Close(fd)
			return fmt.Errorf("connect %s: %w", ap, err)
		}
		return nil
	})
	return fd, err
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	if ap.Addr().Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// readReplies reads the replies to the queries with ids from fd for at most timeout, and says
// which came.
func readReplies(fd int, ids [2]uint16, timeout time.Duration) (got [2]bool) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for got != [2]bool{true, true} {
		left := time.Until(deadline)
		if left <= 0 {
			return got
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return got
		}
		// A connected UDP socket can also hold an ICMP error (ECONNREFUSED): read it and go on.
		m, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil || m < 12 || buf[2]&0x80 == 0 { // the header and its QR bit
			continue
		}
		switch id := binary.BigEndian.Uint16(buf); id {
		case ids[0]:
			got[0] = true
		case ids[1]:
			got[1] = true
		}
	}
	return got
}

// SYNRace sends n pairs of identical TCP SYNs from namespace ns to dst (ip:port, IPv4), each pair
// from two raw sockets on two threads pinned to CPU 0 and CPU 1, with a random source port and
// sequence number per pair. TCP has no clash resolution, so where the two SYNs race in a
// conntrack on the way, the loser moves insert_failed and drop. Nothing needs to answer: a
// SYN-ACK that comes back finds no socket and the client's kernel resets it. The race stops with
// an error after a minute. Without CPUs 0 and 1 it returns an error wrapping ErrUnavailable.
func SYNRace(ns, dst string, n int) error {
	ap, err := netip.ParseAddrPort(dst)
	if err != nil {
		return fmt.Errorf("syn race: %w", err)
	}
	if !ap.Addr().Is4() {
		return fmt.Errorf("syn race: %s is not an IPv4 address", ap.Addr())
	}
	if n < 0 || n > raceMaxPairs {
		return fmt.Errorf("syn race: want 0 to %d pairs, got %d", raceMaxPairs, n)
	}

	// One raw socket per thread: a shared one serialises its senders on the socket lock.
	var src netip.Addr
	fds := [2]int{-1, -1}
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	err = Do(ns, func() error {
		if src, err = sourceAddr(ap); err != nil {
			return err
		}
		for i := range fds {
			// IPPROTO_RAW implies IP_HDRINCL: we write the IP header, and the socket receives nothing.
			if fds[i], err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
				return fmt.Errorf("raw socket: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("syn race: %w", err)
	}

	var pkt []byte // the pair's SYN; written before each round, which orders it before the sends
	// Sendto writes into its Sockaddr: one per thread.
	to := [2]*unix.SockaddrInet4{{Addr: ap.Addr().As4()}, {Addr: ap.Addr().As4()}}
	p, err := startPinned(func(cpu int) error { return unix.Sendto(fds[cpu], pkt, 0, to[cpu]) })
	if err != nil {
		return fmt.Errorf("syn race: %w", err)
	}
	defer p.stop()

	start, base := time.Now(), rand.N(synPortRange)
	for i := range n {
		if time.Since(start) > raceTimeLimit {
			return fmt.Errorf("syn race: time limit %s reached after %d of %d pairs", raceTimeLimit, i, n)
		}
		// Distinct ports, so no pair meets an entry an earlier one left.
		sport := uint16(synPortBase + (base+i)%synPortRange)
		pkt = synPacket(src, ap.Addr(), sport, ap.Port(), rand.Uint32())
		if err := p.round(); err != nil {
			return fmt.Errorf("syn race: pair %d: %w", i, err)
		}
	}
	return nil
}

// sourceAddr returns the address the caller's namespace sends to dst from, as a connected UDP
// socket's local address (connecting sends nothing).
func sourceAddr(dst netip.AddrPort) (netip.Addr, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	_, sa := sockaddr(dst)
	if err := unix.Connect(fd, sa); err != nil {
		return netip.Addr{}, fmt.Errorf("route to %s: %w", dst, err)
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("getsockname: %w", err)
	}
	sa4, ok := local.(*unix.SockaddrInet4)
	if !ok {
		return netip.Addr{}, fmt.Errorf("no IPv4 source address for %s", dst)
	}
	return netip.AddrFrom4(sa4.Addr), nil
}

// synPacket returns an IPv4 header and a TCP SYN without options. The kernel fills in the IP
// header's checksum, total length and ID (IP_HDRINCL); the TCP checksum is ours.
func synPacket(src, dst netip.Addr, sport, dport uint16, seq uint32) []byte {
	const ipLen, tcpLen = 20, 20
	b := make([]byte, ipLen+tcpLen)
	ip, tcp := b[:ipLen], b[ipLen:]
	ip[0] = 0x45 // version 4, 5 words
	binary.BigEndian.PutUint16(ip[2:], ipLen+tcpLen)
	binary.BigEndian.PutUint16(ip[6:], ipFlagDF)
	ip[8] = 64 // TTL
	ip[9] = unix.IPPROTO_TCP
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])

	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = (tcpLen / 4) << 4 // data offset
	tcp[13] = tcpFlagSYN
	binary.BigEndian.PutUint16(tcp[14:], synWindow)

	// The checksum covers the pseudo-header (source, destination, protocol, TCP length) and the
	// segment.
	pseudo := make([]byte, 0, 12+tcpLen)
	pseudo = append(pseudo, s4[:]...)
	pseudo = append(pseudo, d4[:]...)
	pseudo = append(pseudo, 0, unix.IPPROTO_TCP, 0, tcpLen)
	pseudo = append(pseudo, tcp...)
	binary.BigEndian.PutUint16(tcp[16:], checksum(pseudo))
	return b
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// pinned runs fire(0) and fire(1) once per round, on two threads pinned to CPU 0 and CPU 1,
// released at the same instant by a spin barrier.
type pinned struct {
	fire  func(cpu int) error
	arm   [2]chan struct{} // one send per round; closed by stop
	done  chan error       // one error (or nil) per thread per round
	ready atomic.Int64     // threads that reached the barrier, over all rounds
}

// startPinned starts the two threads. It fails, wrapping ErrUnavailable, when the process may not
// run on CPUs 0 and 1.
func startPinned(fire func(cpu int) error) (*pinned, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	if !set.IsSet(0) || !set.IsSet(1) {
		return nil, fmt.Errorf("%w: the race needs CPUs 0 and 1, this process may use %d CPU(s)", ErrUnavailable, set.Count())
	}
	p := &pinned{fire: fire, done: make(chan error, 2)}
	started := make(chan error, 2)
	for cpu := range p.arm {
		p.arm[cpu] = make(chan struct{}, 1)
		go p.thread(cpu, started)
	}
	var errs []error
	for range p.arm {
		errs = append(errs, <-started)
	}
	if err := errors.Join(errs...); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *pinned) thread(cpu int, started chan<- error) {
	// Never unlocked: the pinned thread ends with this goroutine instead of running other code.
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		started <- fmt.Errorf("pin to CPU %d: %w", cpu, err)
		return
	}
	started <- nil
	for range p.arm[cpu] {
		// Round k is released when the count reaches 2k. The other thread's wake-up can take a
		// while; past barrierTimeout, send alone rather than spin forever.
		n := p.ready.Add(1)
		release := (n + 1) / 2 * 2
		for deadline := time.Now().Add(barrierTimeout); p.ready.Load() < release && time.Now().Before(deadline); {
		}
		p.done <- p.fire(cpu)
	}
}

// round sends one pair and waits until both threads sent.
func (p *pinned) round() error {
	for _, arm := range p.arm {
		arm <- struct{}{}
	}
	timeout := time.NewTimer(roundTimeout)
	defer timeout.Stop()
	var errs []error
	for range p.arm {
		select {
		case err := <-p.done:
			errs = append(errs, err)
		case <-timeout.C:
			return fmt.Errorf("pinned senders did not send within %s", roundTimeout)
		}
	}
	return errors.Join(errs...)
}

// stop ends the threads.
func (p *pinned) stop() {
	for _, arm := range p.arm {
		close(arm)
	}
}

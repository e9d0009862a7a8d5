package nodenet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// reusePortUDP opens a UDP socket with SO_REUSEPORT on addr.
func reusePortUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		return err
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.(*net.UDPConn)
}

// inodeOf returns the inode of c's socket.
func inodeOf(t *testing.T, c *net.UDPConn) uint32 {
	t.Helper()
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return uint32(fi.Sys().(*syscall.Stat_t).Ino)
}

// sendFromNewPorts sends n packets to addr, each from a socket of its own (so each has its own
// source port for the kernel's reuseport hash), and returns the senders.
func sendFromNewPorts(t *testing.T, addr net.Addr, n int) []*net.UDPConn {
	t.Helper()
	var out []*net.UDPConn
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.WriteTo([]byte("q"), addr); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// drain reads what is queued on c until it has been quiet for a moment; it returns the senders.
func drain(t *testing.T, c *net.UDPConn) []net.Addr {
	t.Helper()
	var from []net.Addr
	buf := make([]byte, 512)
	for range 1000 {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, a, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		from = append(from, a)
	}
	return from
}

// TestConnectToSelfLeavesReusePortGroup is the kernel behaviour handOver stands on: once a
// socket of a SO_REUSEPORT group is connected to its own address, new packets all go to the
// other sockets; what was queued on it stays readable, and it can still answer each sender.
func TestConnectToSelfLeavesReusePortGroup(t *testing.T) {
	old := reusePortUDP(t, "127.0.0.1:0")
	addr := old.LocalAddr()
	nu := reusePortUDP(t, addr.String())

	first := sendFromNewPorts(t, addr, 32)
	inodes := map[uint32]bool{inodeOf(t, old): true}
	var q uint64
	for deadline := time.Now().Add(5 * time.Second); q == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if q, err = queued(inodes); err != nil {
			t.Fatal(err)
		}
	}
	if q == 0 {
		t.Fatal("Expected some of 32 packets from 32 ports queued on the first socket of the group")
	}

	fds, err := ownSockets()
	if err != nil {
		t.Fatal(err)
	}
	fd, ok := fds[inodeOf(t, old)]
	if !ok {
		t.Fatal("Expected ownSockets to find the socket's descriptor")
	}
	if err := connectToSelf(fd, inodeOf(t, old)); err != nil {
		t.Fatal(err)
	}
	if err := connectToSelf(fd, inodeOf(t, old)+1); err == nil {
		t.Error("Expected connectToSelf to refuse a descriptor that holds another socket")
	}

	later := sendFromNewPorts(t, addr, 32)
	queuedBefore := drain(t, old)
	if len(queuedBefore) == 0 || len(queuedBefore) == 64 {
		t.Fatalf("Expected the first socket to keep what it had queued before it was connected, and only that: got %d packets", len(queuedBefore))
	}
	for _, a := range queuedBefore {
		for _, c := range later {
			if c.LocalAddr().String() == a.String() {
				t.Fatalf("Expected no packet sent after the connect on the connected socket, got one from %s", a)
			}
		}
	}
	if got := len(drain(t, nu)); got+len(queuedBefore) != 64 {
		t.Errorf("Expected the other socket to get the rest of 64 packets, %d, got %d", 64-len(queuedBefore), got)
	}

	// The connected socket still answers a sender (an explicit destination on a connected UDP
	// socket, which Linux allows and Go does not refuse: it did not connect the socket itself).
	if _, err := old.WriteTo([]byte("a"), queuedBefore[0]); err != nil {
		t.Fatalf("Expected the connected socket to answer its queued sender, got %v", err)
	}
	for _, c := range first {
		if c.LocalAddr().String() != queuedBefore[0].String() {
			continue
		}
		if got := drain(t, c); len(got) != 1 || got[0].String() != addr.String() {
			t.Errorf("Expected the sender to get the answer from %s, got %v", addr, got)
		}
		return
	}
	t.Errorf("Expected %s among the first senders", queuedBefore[0])
}

func TestUDPPeer(t *testing.T) {
	ap := netip.MustParseAddrPort
	cluster, link := netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("169.254.20.10")
	own := map[uint32]int{1: 10, 2: 11}
	socks := []socket{
		{proto: "udp", local: ap("10.96.0.10:53"), inode: 1},
		{proto: "udp", local: ap("169.254.20.10:53"), inode: 2},
		{proto: "tcp", local: ap("169.254.20.10:53"), inode: 3}, // another process's, TCP only
	}
	if udpPeer(socks, own, cluster) || udpPeer(socks, own, link) {
		t.Error("Expected no UDP peer where only this process, and another's TCP listener, hold the addresses")
	}
	socks = append(socks, socket{proto: "udp", local: ap("10.96.0.10:53"), inode: 4})
	if !udpPeer(socks, own, cluster) || udpPeer(socks, own, link) {
		t.Error("Expected a UDP peer on the ClusterIP only")
	}
	socks = append(socks, socket{proto: "udp", local: ap("0.0.0.0:53"), inode: 5})
	if !udpPeer(socks, own, link) {
		t.Error("Expected another process's wildcard UDP socket to count as a peer")
	}
}

// TestHandOver: handOver takes only this process's socket out (the other socket of the group
// stands for the new pod's), returns once its queue has been read, and new packets reach the
// other socket alone.
func TestHandOver(t *testing.T) {
	old := reusePortUDP(t, "127.0.0.1:0")
	addr := old.LocalAddr()
	nu := reusePortUDP(t, addr.String())
	local := netip.MustParseAddrPort(addr.String())
	fds, err := ownSockets()
	if err != nil {
		t.Fatal(err)
	}
	oldIno, nuIno := inodeOf(t, old), inodeOf(t, nu)
	socks := []socket{{proto: "udp", local: local, inode: oldIno}, {proto: "udp", local: local, inode: nuIno}}
	own := map[uint32]int{oldIno: fds[oldIno]}

	sendFromNewPorts(t, addr, 32)
	read := make(chan int, 1)
	go func() { // the old server, still reading
		n, buf := 0, make([]byte, 512)
		for old.SetReadDeadline(time.Now().Add(time.Second)) == nil {
			if _, _, err := old.ReadFrom(buf); err != nil {
				break
			}
			n++
		}
		read <- n
	}()
	handed, err := handOver(socks, own)
	if handed != 1 || err != nil {
		t.Fatalf("Expected the one socket of this process's handed over, got %d, %v", handed, err)
	}
	if q, err := queued(map[uint32]bool{oldIno: true}); q != 0 || err != nil {
		t.Errorf("Expected nothing queued on the handed-over socket once handOver returned, got %d bytes, %v", q, err)
	}
	first := <-read
	if first == 0 {
		t.Fatal("Expected some of 32 packets from 32 ports read from the handed-over socket")
	}
	sendFromNewPorts(t, addr, 32)
	if got := len(drain(t, old)); got != 0 {
		t.Errorf("Expected no new packet on the handed-over socket, got %d", got)
	}
	if got := len(drain(t, nu)); got+first != 64 {
		t.Errorf("Expected the other socket to get the rest of 64 packets, %d, got %d", 64-first, got)
	}
}

package conntrack

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"
)

func u32(typ uint16, v uint32) netfilter.Attribute {
	a := netfilter.Attribute{Type: typ}
	a.PutUint32(v)
	return a
}

// cpu618 is what Linux 6.18 sends for one CPU: no 5 (ignore), 14 and 15 present.
func cpu618(insertFailed, drop, clash uint32) []netfilter.Attribute {
	return []netfilter.Attribute{
		u32(ctaStatsFound, 1), u32(ctaStatsInvalid, 2), u32(ctaStatsInsert, 0), u32(ctaStatsInsertFailed, insertFailed),
		u32(ctaStatsDrop, drop), u32(ctaStatsEarlyDrop, 3), u32(ctaStatsError, 4), u32(ctaStatsSearchRestart, 5),
		u32(ctaStatsClashResolve, clash), u32(ctaStatsChainTooLong, 6),
	}
}

func TestAddCPU(t *testing.T) {
	tests := []struct {
		name string
		cpus [][]netfilter.Attribute
		want Stats
	}{
		{"6.18, two CPUs", [][]netfilter.Attribute{cpu618(147, 147, 438), cpu618(152, 153, 9)}, Stats{
			Found: 2, Invalid: 4, InsertFailed: 299, Drop: 300, EarlyDrop: 6, Error: 8, SearchRestart: 10,
			ClashResolve: 447, ChainTooLong: 12, HasClashResolve: true, HasChainTooLong: true,
		}},
		{"before 5.10: no 14, no 15, deprecated ones sent", [][]netfilter.Attribute{{
			u32(1, 99), u32(3, 99), u32(5, 99), u32(6, 99), u32(7, 99), u32(ctaStatsInsertFailed, 7), u32(ctaStatsDrop, 1),
		}}, Stats{InsertFailed: 7, Drop: 1}},
		{"5.10 to 5.14: 14, no 15", [][]netfilter.Attribute{{u32(ctaStatsClashResolve, 0)}}, Stats{HasClashResolve: true}},
		{"unknown future attribute of any size", [][]netfilter.Attribute{{
			{Type: 16, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}}, {Type: 99}, u32(ctaStatsEarlyDrop, 1),
		}}, Stats{EarlyDrop: 1}},
		{"big-endian decoding", [][]netfilter.Attribute{{
			{Type: ctaStatsInsertFailed, Data: []byte{0x01, 0x02, 0x03, 0x04}},
		}}, Stats{InsertFailed: 0x01020304}},
		{"no CPU", nil, Stats{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Stats
			for _, attrs := range tc.cpus {
				if err := s.addCPU(attrs); err != nil {
					t.Fatalf("Expected no error, got %v", err)
				}
			}
			if s != tc.want {
				t.Errorf("Expected %+v, got %+v", tc.want, s)
			}
		})
	}
}

func TestAddCPUMalformed(t *testing.T) {
	tests := []struct {
		name string
		attr netfilter.Attribute
	}{
		{"short", netfilter.Attribute{Type: ctaStatsDrop, Data: []byte{1, 2}}},
		{"empty", netfilter.Attribute{Type: ctaStatsInsertFailed}},
		{"64-bit", netfilter.Attribute{Type: ctaStatsClashResolve, Data: make([]byte, 8)}},
		{"nested", netfilter.Attribute{Type: ctaStatsFound, Nested: true, Data: make([]byte, 4)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Stats
			err := s.addCPU([]netfilter.Attribute{tc.attr})
			if err == nil || !strings.Contains(err.Error(), "want a 4-byte counter") {
				t.Errorf("Expected a 4-byte counter error, got %v", err)
			}
		})
	}
}

// TestStatsFromMessages round-trips synthetic per-CPU messages through the netfilter encoding.
func TestStatsFromMessages(t *testing.T) {
	var msgs []netlink.Message
	for i, attrs := range [][]netfilter.Attribute{cpu618(1, 2, 3), cpu618(10, 20, 30)} {
		m, err := netfilter.MarshalNetlink(netfilter.Header{
			SubsystemID: netfilter.NFSubsysCTNetlink, MessageType: ipctnlMsgCtGetStatsCPU, ResourceID: uint16(i),
		}, attrs)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	s, err := statsFromMessages(msgs)
	if err != nil {
		t.Fatalf("Expected no error, got %v", err)
	}
	want := Stats{
		Found: 2, Invalid: 4, InsertFailed: 11, Drop: 22, EarlyDrop: 6, Error: 8, SearchRestart: 10,
		ClashResolve: 33, ChainTooLong: 12, HasClashResolve: true, HasChainTooLong: true, Source: "netlink",
	}
	if s != want {
		t.Errorf("Expected %+v, got %+v", want, s)
	}

	bad, err := netfilter.MarshalNetlink(netfilter.Header{SubsystemID: netfilter.NFSubsysCTNetlink, ResourceID: 1},
		[]netfilter.Attribute{{Type: ctaStatsDrop, Data: []byte{1}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		msgs       []netlink.Message
		errContent string
	}{
		{"none", nil, "no per-CPU statistics"},
		{"too short for a netfilter header", []netlink.Message{{Data: []byte{1}}}, ""},
		{"bad counter", []netlink.Message{msgs[0], bad}, "cpu 1: attribute 10"},
	} {
		if _, err := statsFromMessages(tc.msgs); err == nil || !strings.Contains(err.Error(), tc.errContent) {
			t.Errorf("%s: Expected an error containing %q, got %v", tc.name, tc.errContent, err)
		}
	}
}

// TestNetlinkReader reads this process's network namespace over ctnetlink, as root.
func TestNetlinkReader(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Skipping: ctnetlink needs CAP_NET_ADMIN")
	}
	r, err := NewNetlink()
	if err != nil {
		t.Fatalf("Expected no error, got %v", err)
	}
	s, err := r.Read()
	if err != nil {
		t.Fatalf("Expected no error, got %v", err)
	}
	if s.Source != "netlink" || s.MaxEntries == 0 {
		t.Errorf("Expected source netlink and a known limit, got %+v", s)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Expected no error closing, got %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Expected a second Close to do nothing, got %v", err)
	}
	if _, err := r.Read(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Expected a read after Close to fail, got %v", err)
	}
}

// TestCollectorClosedNetlink: a closed netlink reader's failed read is reported under netlink.
func TestCollectorClosedNetlink(t *testing.T) {
	defer SetSource(nil, "")
	SetSource(&netlinkReader{}, "n")
	got := collect(t)
	if len(got) != 1 || got[`coredns_raceguard_conntrack_up{node="n",source="netlink"}`] != 0 {
		t.Errorf("Expected only up 0 under source netlink, got %v", got)
	}
}

// TestOpenWithoutCapNetAdmin opens the netlink source on a thread that dropped CAP_NET_ADMIN from
// its effective set. The kernel checks the capability of the socket's opener for every nfnetlink
// message, so the query is refused with EPERM and Open falls back to procfs. Capabilities are per
// thread: the thread is never unlocked, so the runtime retires it with the goroutine.
func TestOpenWithoutCapNetAdmin(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Skipping: needs root to have CAP_NET_ADMIN to drop")
	}
	if _, err := os.Stat(DefaultProcPath); err != nil {
		t.Skipf("Skipping: %v", err)
	}
	type result struct {
		r    Reader
		logs []string
		err  error
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked
		var res result
		defer func() { done <- res }()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if res.err = unix.Capget(&hdr, &data[0]); res.err != nil {
			return
		}
		data[unix.CAP_NET_ADMIN/32].Effective &^= 1 << (unix.CAP_NET_ADMIN % 32)
		if res.err = unix.Capset(&hdr, &data[0]); res.err != nil {
			return
		}
		res.r, res.err = Open("netlink", "", func(format string, args ...any) {
			res.logs = append(res.logs, format)
		})
	}()
	res := <-done
	if res.err != nil {
		t.Fatalf("Expected no error, got %v", res.err)
	}
	defer res.r.Close()
	if len(res.logs) != 1 || !strings.Contains(res.logs[0], "reading %s instead") {
		t.Fatalf("Expected one log line about the fallback, got %q", res.logs)
	}
	s, err := res.r.Read()
	if err != nil || s.Source != "procfs" {
		t.Errorf("Expected a procfs read, got %+v, %v", s, err)
	}

	// And the socket itself, made without the capability, is refused with EPERM.
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		unix.Capget(&hdr, &data[0])
		data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		r, err := NewNetlink()
		if err != nil {
			errc <- err
			return
		}
		defer r.Close()
		_, err = r.Read()
		errc <- err
	}()
	if err := <-errc; !errors.Is(err, syscall.EPERM) {
		t.Errorf("Expected EPERM without CAP_NET_ADMIN, got %v", err)
	}
}

// TestOpenRecoversSocket: the reader Open returns survives losing its netlink socket, with the
// real kernel: it makes a new one, silently.
func TestOpenRecoversSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Skipping: ctnetlink needs CAP_NET_ADMIN")
	}
	var logs []string
	r, err := Open("netlink", "", func(f string, a ...any) { logs = append(logs, f) })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, ok := r.(*recovering)
	if !ok {
		t.Fatalf("Expected the recovering netlink reader, got %T", r)
	}
	rec.nl.Close() // the socket is gone
	if s, err := r.Read(); err != nil || s.Source != "netlink" || len(logs) != 0 {
		t.Errorf("Expected a new socket and netlink statistics, silently; got %+v, %v, logs %v", s, err, logs)
	}
}

// FuzzStatsFromMessages decodes arbitrary payloads as the kernel's per-CPU statistics messages:
// an error or statistics, never a panic (a malformed or unexpected reply must fail a scrape, not
// crash the server).
func FuzzStatsFromMessages(f *testing.F) {
	for i, attrs := range [][]netfilter.Attribute{cpu618(1, 2, 3), cpu618(10, 20, 30), {{Type: ctaStatsDrop, Data: []byte{1}}}, nil} {
		m, err := netfilter.MarshalNetlink(netfilter.Header{
			SubsystemID: netfilter.NFSubsysCTNetlink, MessageType: ipctnlMsgCtGetStatsCPU, ResourceID: uint16(i),
		}, attrs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.Data, m.Data)
	}
	f.Add([]byte{}, []byte{1, 2, 3, 4, 0xff})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s, err := statsFromMessages([]netlink.Message{{Data: a}, {Data: b}})
		if err == nil && s.Source != SourceNetlink {
			t.Errorf("Expected netlink statistics or an error, got %+v", s)
		}
	})
}

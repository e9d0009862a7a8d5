package labtest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raceguard/raceguard/internal/conntrack"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// racePairs is the pair count of each race: a few seconds at most, enough for robust bounds.
const racePairs = 400

// TestConntrackLabRace forces both real conntrack races through the lab node's DNAT and reads the
// node's counters the three ways there are. A UDP A+AAAA pair sent at the same instant from two
// CPUs races in the node's conntrack (about 85-90 % of pairs on a 2-CPU machine) and the kernel
// resolves the clash: clash_resolve moves, both queries are answered. Two identical TCP SYNs race
// the same way, but TCP has no clash resolution: the loser moves insert_failed and drop.
func TestConntrackLabRace(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)

	// The netlink reader's sockets are made on a thread inside the node namespace and read it from
	// then on; the procfs reader must read its file from such a thread every time.
	var nl conntrack.Reader
	if err := lab.Do(l.Node, func() (err error) { nl, err = conntrack.NewNetlink(); return err }); err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	pr := conntrack.NewProcfs("/proc/thread-self/net/stat/nf_conntrack")
	readNetlink := func() conntrack.Stats {
		t.Helper()
		s, err := nl.Read()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	readProcfs := func() conntrack.Stats {
		t.Helper()
		var s conntrack.Stats
		if err := lab.Do(l.Node, func() (err error) { s, err = pr.Read(); return err }); err != nil {
			t.Fatal(err)
		}
		return s
	}
	dst := lab.ClusterIP + ":53"

	before := readNetlink()
	res, err := lab.UDPPairRace(l.Client, dst, racePairs)
	if errors.Is(err, lab.ErrUnavailable) {
		t.Skipf("Skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	mid := readNetlink()
	t.Logf("UDP race: %d pairs in %s, %d both answered, %d only A, %d only AAAA, %d none; node clash_resolve +%d, insert_failed +%d, drop +%d",
		res.Pairs, res.Elapsed.Round(time.Millisecond), res.BothAnswered, res.OnlyA, res.OnlyAAAA, res.None,
		mid.ClashResolve-before.ClashResolve, mid.InsertFailed-before.InsertFailed, mid.Drop-before.Drop)
	if !mid.HasClashResolve {
		t.Fatalf("Expected the kernel (5.10+) to report clash_resolve, got %+v", mid)
	}
	if d := mid.ClashResolve - before.ClashResolve; d < racePairs/10 {
		t.Errorf("Expected the UDP pair race to move the node's clash_resolve by more than %d, moved %d", racePairs/10, d)
	}
	if res.BothAnswered < racePairs*9/10 {
		t.Errorf("Expected the kernel to resolve UDP clashes, so that at least %d of %d pairs are fully answered, got %d",
			racePairs*9/10, racePairs, res.BothAnswered)
	}

	if err := lab.SYNRace(l.Client, dst, racePairs); err != nil {
		t.Fatal(err)
	}
	after := readNetlink()
	t.Logf("SYN race: %d pairs; node insert_failed +%d, drop +%d, clash_resolve +%d",
		racePairs, after.InsertFailed-mid.InsertFailed, after.Drop-mid.Drop, after.ClashResolve-mid.ClashResolve)
	if d := after.InsertFailed - mid.InsertFailed; d < racePairs/10 {
		t.Errorf("Expected the SYN race to move the node's insert_failed by more than %d, moved %d", racePairs/10, d)
	}
	if d := after.Drop - mid.Drop; d < racePairs/10 {
		t.Errorf("Expected the SYN race to move the node's drop by more than %d, moved %d", racePairs/10, d)
	}

	// The three views of the node's counters agree. Read back to back; a late packet of the races
	// (a SYN-ACK, the client's reset) can still land between two reads, so try a few times.
	var nls, prs conntrack.Stats
	var file map[string]uint64
	for try := 0; try < 5; try++ {
		time.Sleep(100 * time.Millisecond)
		nls, prs, file = readNetlink(), readProcfs(), catConntrackStat(t, l.Node)
		if sameCounters(nls, file) == "" && sameCounters(prs, file) == "" {
			break
		}
	}
	if diff := sameCounters(nls, file); diff != "" {
		t.Errorf("Expected the netlink reader to match the node's /proc/net/stat/nf_conntrack: %s", diff)
	}
	if diff := sameCounters(prs, file); diff != "" {
		t.Errorf("Expected the procfs reader to match the node's /proc/net/stat/nf_conntrack: %s", diff)
	}
	if nls.Source != "netlink" || prs.Source != "procfs" {
		t.Errorf("Expected sources netlink and procfs, got %q and %q", nls.Source, prs.Source)
	}
	if nls.MaxEntries == 0 || nls.MaxEntries != prs.MaxEntries {
		t.Errorf("Expected both readers to know nf_conntrack_max, got %d (netlink) and %d (procfs)", nls.MaxEntries, prs.MaxEntries)
	}
	if nls.Entries == 0 || prs.Entries == 0 {
		t.Errorf("Expected the node's conntrack entries of the races, got %d (netlink) and %d (procfs)", nls.Entries, prs.Entries)
	}
	t.Logf("node: netlink %+v", nls)

	// And the collector exports the node's numbers.
	conntrack.SetSource(nl, "lab-node")
	defer conntrack.SetSource(nil, "")
	if v := gatherValue(t, "coredns_raceguard_conntrack_insert_failed_total"); v < float64(nls.InsertFailed) {
		t.Errorf("Expected coredns_raceguard_conntrack_insert_failed_total of at least %d, got %v", nls.InsertFailed, v)
	}
	if v := gatherValue(t, "coredns_raceguard_conntrack_up"); v != 1 {
		t.Errorf("Expected coredns_raceguard_conntrack_up 1, got %v", v)
	}
}

// catConntrackStat returns the column sums of namespace ns's /proc/net/stat/nf_conntrack, read by
// cat(1) under ip netns exec and parsed here, independently of package conntrack.
func catConntrackStat(t *testing.T, ns string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "cat", "/proc/net/stat/nf_conntrack").CombinedOutput()
	if err != nil {
		t.Fatalf("cat /proc/net/stat/nf_conntrack in %s: %v: %s", ns, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	header := strings.Fields(lines[0])
	sums := map[string]uint64{}
	for _, line := range lines[1:] {
		for i, f := range strings.Fields(line) {
			v, err := strconv.ParseUint(f, 16, 64)
			if err != nil {
				t.Fatalf("Expected hex in %q, got %v", line, err)
			}
			sums[header[i]] += v
		}
	}
	return sums
}

// sameCounters compares the counters s and the file's column sums have in common; "" when equal.
func sameCounters(s conntrack.Stats, file map[string]uint64) string {
	var diffs []string
	for _, c := range []struct {
		column string
		v      uint64
	}{
		{"insert_failed", s.InsertFailed}, {"drop", s.Drop}, {"clashres", s.ClashResolve},
		{"early_drop", s.EarlyDrop}, {"search_restart", s.SearchRestart},
	} {
		if file[c.column] != c.v {
			diffs = append(diffs, fmt.Sprintf("%s: file %d, reader %d", c.column, file[c.column], c.v))
		}
	}
	return strings.Join(diffs, "; ")
}

// gatherValue returns the value of the single sample of metric name on the default registry.
func gatherValue(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("Expected one %s sample, got %d", name, len(mf.GetMetric()))
		}
		m := mf.GetMetric()[0]
		if m.Counter != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("Expected a %s sample, got none", name)
	return 0
}

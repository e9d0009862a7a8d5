package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// sample is one reading of the CoreDNS process.
type sample struct {
	at         time.Duration // since the soak's load started
	wall       time.Time
	phase      string
	rss        int64 // bytes, VmRSS of /proc/<pid>/status
	heap       float64
	cache      float64 // coredns_cache_entries, both caches
	goroutines int
	entries    map[string]float64 // coredns_raceguard_table_entries by table
	capacity   map[string]float64
	overflows  map[string]float64 // coredns_raceguard_table_overflows_total by table
	m          lab.Metrics
	bufDrops   int           // UDP datagrams the node's kernel dropped for full buffers, since the lab began
	cpu        time.Duration // CPU time the process has used
	self       time.Duration // CPU time this program (upstream, probe, dnsperf's reader) has used
	perfPID    int           // the dnsperf running, if any
	perfCPU    time.Duration // CPU time it has used
	machine    cpuTicks
}

// tableNames are raceguard's bounded tables, in the order the report shows them.
var tableNames = []string{"fingerprints", "search_pairs", "search_clients", "collapse_flights", "sibling_prefetches", "families"}

// takeSample reads the RSS of process pid and the node server's metrics.
func takeSample(l *lab.Lab, pid int, at time.Duration, phase string) (sample, error) {
	s := sample{at: at, wall: time.Now(), phase: phase, entries: map[string]float64{}, capacity: map[string]float64{}, overflows: map[string]float64{}}
	var err error
	if s.rss, err = vmRSS(pid); err != nil {
		return s, err
	}
	if s.cpu, err = cpuTime(pid); err != nil {
		return s, err
	}
	if s.self, err = cpuTime(os.Getpid()); err != nil {
		return s, err
	}
	if s.perfPID = int(dnsperfPID.Load()); s.perfPID != 0 {
		s.perfCPU, _ = cpuTime(s.perfPID) // it may have just ended
	}
	if s.machine, err = machineTicks(); err != nil {
		return s, err
	}
	u, err := lab.ReadUDPStats(l.Node)
	if err != nil {
		return s, err
	}
	s.bufDrops = u.BufferDrops()
	if s.m, err = l.ScrapeNode(); err != nil {
		return s, err
	}
	// The stack-start holders (internal/stackstart) follow the load, up to 48: not counted.
	s.goroutines = int(s.m.Sum("go_goroutines", nil) - s.m.Sum("coredns_raceguard_stack_start_holders", nil))
	s.heap = s.m.Sum("go_memstats_heap_inuse_bytes", nil)
	s.cache = s.m.Sum("coredns_cache_entries", nil)
	for _, smp := range s.m {
		t := smp.Labels["table"]
		switch smp.Name {
		case "coredns_raceguard_table_entries":
			s.entries[t] += smp.Value
		case "coredns_raceguard_table_capacity":
			s.capacity[t] += smp.Value
		case "coredns_raceguard_table_overflows_total":
			s.overflows[t] += smp.Value
		}
	}
	return s, nil
}

// tables returns the table names the sample has, known ones first.
func (s sample) tables() []string {
	out := slices.Clone(tableNames)
	var extra []string
	for t := range s.capacity {
		if !slices.Contains(out, t) {
			extra = append(extra, t)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

// vmRSS returns the resident set of process pid.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// cpuTime returns the user and system time process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux architecture Go
// supports.
const clockTicks = 100

// cpuTicks are the machine's clock ticks by use, from /proc/stat's cpu line.
type cpuTicks struct{ busy, softirq, all int64 }

// machineTicks returns the clock ticks all CPUs spent busy, in softirq (the kernel's network
// processing, mostly), and in all.
func machineTicks() (cpuTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTicks{}, fmt.Errorf("unexpected /proc/stat: %q", line)
	}
	var t cpuTicks
	for i, v := range f[1:9] {
		n, _ := strconv.ParseInt(v, 10, 64)
		t.all += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
		if i == 6 {
			t.softirq = n
		}
	}
	return t, nil
}

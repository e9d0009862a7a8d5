package hostile

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// Layout is the server under test.
type Layout struct {
	Raceguard bool   // the raceguard directives in the block; stock CoreDNS without them
	Options   string // lines for the raceguard block beyond the node's search domain
	File      bool   // the cluster zone served by file in the same block (NodeLocal forwards it instead)
	Extra     string // more plugin lines for the block, such as pprof
}

// Name says what l runs, for logs and table rows.
func (l Layout) Name() string {
	if !l.Raceguard {
		return "stock"
	}
	if o := strings.Join(strings.Fields(strings.ReplaceAll(l.Options, "\n", ";")), " "); o != "" {
		return "raceguard (" + o + ")"
	}
	return "raceguard"
}

// corefile is the node-local layout (raceguard, cache, collapse, forward) of issue 13, forwarding
// to upstream; stock has cache and forward alone.
func (l Layout) corefile(port, metrics, upstream string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, ".:%s {\n    bind 127.0.0.1\n    prometheus %s\n", port, metrics)
	for _, e := range strings.Split(strings.TrimSpace(l.Extra), "\n") {
		if e = strings.TrimSpace(e); e != "" {
			fmt.Fprintf(&b, "    %s\n", e)
		}
	}
	if l.Raceguard {
		fmt.Fprintf(&b, "    raceguard {\n        node_search %s\n        conntrack off\n", lab.NodeDomain)
		for _, o := range strings.Split(strings.TrimSpace(l.Options), "\n") {
			if o = strings.TrimSpace(o); o != "" {
				fmt.Fprintf(&b, "        %s\n", o)
			}
		}
		b.WriteString("    }\n")
	}
	b.WriteString("    cache 30\n")
	if l.Raceguard {
		b.WriteString("    collapse\n")
	}
	if l.File {
		zone, err := lab.RepoPath("zones/cluster.local.db")
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "    file %s cluster.local\n", zone)
	}
	fmt.Fprintf(&b, "    forward . %s\n}\n", upstream)
	return b.String(), nil
}

// server is a CoreDNS process on loopback.
type server struct {
	proc    *lab.Process
	addr    string // DNS, UDP
	metrics string // prometheus host:port
}

// start runs bin on l's Corefile in dir, forwarding to upstream.
func start(bin, dir, name string, l Layout, upstream string) (*server, error) {
	ports, err := lab.FreeLoopbackPorts(2)
	if err != nil {
		return nil, err
	}
	port, metrics := ports[0], "127.0.0.1:"+ports[1]
	conf, err := l.corefile(port, metrics, upstream)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + port
	p, err := lab.StartProcess("", bin, dir, name, conf, addr)
	if err != nil {
		return nil, err
	}
	return &server{proc: p, addr: addr, metrics: metrics}, nil
}

// goroutines reads the server's go_goroutines.
func (s *server) goroutines() (int, error) {
	text, err := lab.ScrapeURL("", "http://"+s.metrics+"/metrics")
	if err != nil {
		return 0, err
	}
	return int(lab.ParseMetrics(text).Sum("go_goroutines", nil)), nil
}

// scrape returns the server's metrics.
func (s *server) scrape() (lab.Metrics, error) {
	text, err := lab.ScrapeURL("", "http://"+s.metrics+"/metrics")
	if err != nil {
		return nil, err
	}
	return lab.ParseMetrics(text), nil
}

// memory returns the server's resident set and its peak (VmRSS, VmHWM of /proc/PID/status), in
// bytes.
func memory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return rss, peak, nil
}

// settle waits until f reports true, or d has passed.
func settle(d time.Duration, f func() bool) {
	for deadline := time.Now().Add(d); !f() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
}

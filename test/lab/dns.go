package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/miekg/dns"
)

// StockCorefile is a kube-dns-like CoreDNS without raceguard: cache, the sample cluster zone and a
// forwarder to the upstream. It is a text/template over CorefileData.
const StockCorefile = `.:{{.Port}} {
    errors
    prometheus {{.Metrics}}
    cache 30
    file {{.ClusterZone}} cluster.local
    forward . {{.Upstream}}
}
`

// RaceguardCorefile is StockCorefile with both raceguard directives at their defaults and the
// lab's node domain listed for search completion.
const RaceguardCorefile = `.:{{.Port}} {
    errors
    prometheus {{.Metrics}}
    raceguard {
        node_search ` + NodeDomain + `
    }
    cache 30
    collapse
    file {{.ClusterZone}} cluster.local
    forward . {{.Upstream}}
}
`

// CorefileData is what a Corefile template can refer to.
type CorefileData struct {
	Port        string // DNS port
	Metrics     string // prometheus listen address
	Health      string // health listen address, for a Corefile with health
	Ready       string // ready listen address, for a Corefile with ready
	Upstream    string // the upstream's host:port
	ClusterZone string // absolute path of the sample cluster.local zone file
	ResolvConf  string // absolute path of a resolv.conf like the lab client's (for stock autopath)
	Kubeconfig  string // the fake Kubernetes API's kubeconfig, once StartKubeAPI ran
	Server      int    // 1 or 2 in the lab
}

// Render executes the Corefile template corefile with d, filling ClusterZone and ResolvConf
// (written into dir) when empty.
func Render(corefile string, d CorefileData, dir string) (string, error) {
	tmpl, err := template.New("Corefile").Parse(corefile)
	if err != nil {
		return "", err
	}
	if d.ClusterZone == "" {
		if d.ClusterZone, err = RepoPath("zones/cluster.local.db"); err != nil {
			return "", err
		}
	}
	if d.ResolvConf == "" {
		d.ResolvConf = filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(d.ResolvConf, []byte(DefaultResolvConf().String()), 0o644); err != nil {
			return "", err
		}
	}
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, d)
	return buf.String(), err
}

// Process is a process the lab started: a CoreDNS server, or any command (StartCommand).
type Process struct {
	name string
	cmd  *exec.Cmd
	conf string // the Corefile
	log  string
	done chan struct{}
}

// StartProcess runs the CoreDNS binary bin on the Corefile text corefile, inside namespace ns
// (or the caller's when empty), keeping its files in dir under name. It returns once the server
// answers a query at probe (host:port), or fails with its log. wrap, if any, is a command that
// runs CoreDNS, as setpriv does to drop capabilities.
func StartProcess(ns, bin, dir, name, corefile, probe string, wrap ...string) (*Process, error) {
	return StartProcessWait(ns, bin, dir, name, corefile, DNSReady(ns, probe), wrap...)
}

// DNSReady returns a readiness check: a DNS server answers a query at probe (host:port) from
// namespace ns.
func DNSReady(ns, probe string) func() error {
	m := new(dns.Msg).SetQuestion("ready.lab.", dns.TypeA)
	return func() error {
		if _, err := Exchange(ns, "udp", probe, m, 200*time.Millisecond); err != nil {
			return fmt.Errorf("it did not answer at %s: %w", probe, err)
		}
		return nil
	}
}

// StartProcessWait is StartProcess with ready in place of the DNS probe: it returns once ready
// returns nil, and fails after 20 s with ready's last error and the log.
func StartProcessWait(ns, bin, dir, name, corefile string, ready func() error, wrap ...string) (*Process, error) {
	p, err := StartCoreDNS(ns, bin, dir, name, corefile, nil, wrap...)
	if err != nil {
		return nil, err
	}
	if err := p.Wait(ready, 20*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// StartCoreDNS is StartProcess without the wait: it writes the Corefile and starts CoreDNS with
// env added to the test's environment (as a pod's container gets its own), and returns at once.
func StartCoreDNS(ns, bin, dir, name, corefile string, env []string, wrap ...string) (*Process, error) {
	conf := filepath.Join(dir, name+".Corefile")
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		return nil, err
	}
	p, err := StartCommand(ns, dir, name, env, append(append(wrap, bin), "-conf", conf)...)
	if err != nil {
		return nil, err
	}
	p.conf = conf
	return p, nil
}

// StartCommand runs args inside namespace ns (or the caller's when empty) with env added to the
// test's environment, logging its output to dir/name.log. The process dies with the test process
// (Pdeathsig); the caller stops it.
func StartCommand(ns, dir, name string, env []string, args ...string) (*Process, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	if ns != "" {
		// ip execs the command in place, so the pid stays the command's.
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test
	if err := startOnSpawner(cmd); err != nil {
		logf.Close()
		return nil, err
	}
	p := &Process{name: name, cmd: cmd, log: logf.Name(), done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// Wait waits, at most timeout, until ready returns nil, failing with ready's last error and the
// process's log if the process exits or the time runs out.
func (p *Process) Wait(ready func() error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", p.name, p.Log())
		default:
		}
		err := ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready within %s (%v): %s", p.name, timeout, err, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spawn runs the functions sent to it on one OS thread that lives as long as the test process.
// Pdeathsig fires when the *thread* that forked a child ends, not the process: a child forked on
// an ordinary thread is killed the moment Go retires that thread, which it does when a goroutine
// that locked it ends locked (the race generators' pinned threads, a namespace switch that could
// not be undone). Every CoreDNS of the lab is forked here, so it dies with the test and no sooner.
var spawn = make(chan func())

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: this thread is the parent of every lab process
		for f := range spawn {
			f()
		}
	}()
}

// startOnSpawner starts cmd from the spawner thread.
func startOnSpawner(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	spawn <- func() { errc <- cmd.Start() }
	return <-errc
}

// Log returns what the process has logged so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Conf returns the path of the process's Corefile, which the reload plugin watches.
func (p *Process) Conf() string { return p.conf }

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop terminates the process (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (p *Process) Stop() { p.StopWithin(5 * time.Second) }

// StopWithin is Stop with a grace period of d (a lameduck period must fit in it).
func (p *Process) StopWithin(d time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill kills the process with SIGKILL, as the OOM killer does, and waits for it.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// StartDNS (re)starts CoreDNS in both DNS server namespaces from corefile, a text/template over
// CorefileData (Port 53, Metrics :9153), and waits until both answer.
func (l *Lab) StartDNS(corefile string) error {
	l.StopDNS()
	l.serversMu.Lock()
	defer l.serversMu.Unlock()
	for i, ns := range l.DNS {
		text, err := Render(corefile, CorefileData{Port: "53", Metrics: ":9153", Upstream: l.Up.Addr, Kubeconfig: l.kubeconfig, Server: i + 1}, l.dir)
		if err != nil {
			return err
		}
		if l.servers[i], err = StartProcess(ns, l.coredns, l.dir, fmt.Sprintf("dns%d", i+1), text, DNSIPs[i]+":53"); err != nil {
			return err
		}
	}
	return nil
}

// NodeIP is the node's address on the bridge, where a node-local server listens.
const NodeIP = "10.32.0.1"

// StartNodeDNS runs CoreDNS in the node's own namespace, as a hostNetwork DaemonSet does, on
// corefile (Port 53, Metrics 10.32.0.1:9153), and sends the ClusterIP to it alone. It reads the
// node's conntrack counters. wrap is passed to StartProcess. The caller stops it.
func (l *Lab) StartNodeDNS(corefile string, wrap ...string) (*Process, error) {
	text, err := Render(corefile, CorefileData{Port: "53", Metrics: NodeIP + ":9153", Upstream: l.Up.Addr, Kubeconfig: l.kubeconfig}, l.dir)
	if err != nil {
		return nil, err
	}
	p, err := StartProcess(l.Node, l.coredns, l.dir, "node-dns", text, NodeIP+":53", wrap...)
	if err != nil {
		return nil, err
	}
	if err := l.SetBackendIPs(NodeIP); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// ScrapeNode returns the metrics of the node-local server.
func (l *Lab) ScrapeNode() (Metrics, error) {
	text, err := ScrapeURL(l.Node, "http://"+NodeIP+":9153/metrics")
	return ParseMetrics(text), err
}

// DNSLog returns what server i has logged so far.
func (l *Lab) DNSLog(i int) string {
	l.serversMu.Lock()
	defer l.serversMu.Unlock()
	if l.servers[i] == nil {
		return ""
	}
	return l.servers[i].Log()
}

// StopDNS stops the DNS servers, if running.
func (l *Lab) StopDNS() {
	l.serversMu.Lock()
	defer l.serversMu.Unlock()
	for i, s := range l.servers {
		if s != nil {
			s.Stop()
			l.servers[i] = nil
		}
	}
}

// Exchange sends m over network ("udp" or "tcp") to addr from a socket in namespace ns (the
// caller's own when empty).
func Exchange(ns, network, addr string, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	var conn net.Conn
	err := Do(ns, func() (err error) {
		conn, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := &dns.Client{Net: network, Timeout: timeout}
	r, _, err := c.ExchangeWithConn(m, &dns.Conn{Conn: conn})
	return r, err
}

// Scrape returns the Prometheus text exposition of DNS server i (its prometheus plugin on :9153).
func (l *Lab) Scrape(i int) (string, error) {
	return ScrapeURL(l.Node, "http://"+DNSIPs[i]+":9153/metrics")
}

// NSTransport is an HTTP transport whose connections are made from namespace ns (the caller's own
// when empty), each dial bounded by timeout.
func NSTransport(ns string, timeout time.Duration) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			err = Do(ns, func() (err error) {
				d := net.Dialer{Timeout: timeout}
				conn, err = d.DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
	}
}

// ScrapeURL fetches url from a socket in namespace ns (the caller's own when empty).
func ScrapeURL(ns, url string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: NSTransport(ns, 5*time.Second)}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	return Fetch(client, req)
}

// Fetch sends req with client and returns the body of a 200 answer; for any other status, the
// body with an error naming it.
func Fetch(client *http.Client, req *http.Request) (string, error) {
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s %s: %s", req.Method, req.URL, resp.Status)
	}
	return string(b), err
}

// RepoPath returns the absolute path of rel inside the raceguard repository, found by walking up
// from the working directory to its go.mod.
func RepoPath(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/raceguard/raceguard\n") {
			return filepath.Join(dir, rel), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("lab: not inside the raceguard repository")
		}
		dir = parent
	}
}

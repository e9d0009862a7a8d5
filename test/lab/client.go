package lab

import (
	"bufio"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed clients/gai.c
var gaiSource string

// Libc is a C library whose resolver a client uses.
type Libc string

// The two C libraries of the lab's clients.
const (
	Glibc Libc = "glibc"
	Musl  Libc = "musl"
)

// Family is the address family a client asks getaddrinfo for.
type Family string

// Families, as getaddrinfo's hints.ai_family.
const (
	Unspec Family = "AF_UNSPEC" // A and AAAA, with AI_ADDRCONFIG
	Inet   Family = "AF_INET"
	Inet6  Family = "AF_INET6"
)

// Result is one getaddrinfo call.
type Result struct {
	Name    string
	Err     string   // "" on success, else the EAI_* name
	Addrs   []string // sorted, without duplicates
	Elapsed time.Duration
	Started time.Time // when the lookup began, by the client's clock
	Ended   time.Time // when the lab read the result
}

// String renders the outcome a program would see (the error or the address set), not the timing.
func (r Result) String() string {
	if r.Err != "" {
		return r.Err
	}
	return strings.Join(r.Addrs, ",")
}

// ResolvConf is the client's /etc/resolv.conf.
type ResolvConf struct {
	Nameserver string
	Search     []string
	Options    []string
}

// DefaultResolvConf is a ClusterFirst pod's resolv.conf in namespace "default" on a node whose own
// search domain is lab.internal.
func DefaultResolvConf() ResolvConf {
	return ResolvConf{
		Nameserver: ClusterIP,
		Search:     []string{PodNamespace + ".svc.cluster.local", "svc.cluster.local", "cluster.local", NodeDomain},
		Options:    []string{"ndots:5"},
	}
}

// WithOptions returns rc with more resolver options (e.g. "single-request-reopen", "timeout:1").
func (rc ResolvConf) WithOptions(opts ...string) ResolvConf {
	rc.Options = append(slices.Clone(rc.Options), opts...)
	return rc
}

func (rc ResolvConf) String() string {
	s := "nameserver " + rc.Nameserver + "\n"
	if len(rc.Search) > 0 {
		s += "search " + strings.Join(rc.Search, " ") + "\n"
	}
	if len(rc.Options) > 0 {
		s += "options " + strings.Join(rc.Options, " ") + "\n"
	}
	return s
}

// writeClientFiles writes the files `ip netns exec` bind-mounts over /etc in the client. Each is
// replaced by a rename, so a client already running keeps the file it started with.
func (l *Lab) writeClientFiles(rc ResolvConf) error { return writeNetnsFiles(l.Client, rc) }

// writeNetnsFiles writes resolv.conf, hosts and nsswitch.conf for namespace ns.
func writeNetnsFiles(ns string, rc ResolvConf) error { return writeNetnsText(ns, rc.String()) }

func writeNetnsText(ns, resolvConf string) error {
	dir := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, body := range map[string]string{
		"resolv.conf":   resolvConf,
		"hosts":         "127.0.0.1 localhost\n::1 localhost\n",
		"nsswitch.conf": "hosts: files dns\n",
	} {
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

var (
	gaiOnce  sync.Once
	gaiBins  map[Libc]string
	gaiError error
)

// gaiBinary returns the client program for libc, compiling it on first use into a folder keyed by
// the source's hash, so runs share it and a changed source gets a new one.
func gaiBinary(libc Libc) (string, error) {
	gaiOnce.Do(func() {
		sum := sha256.Sum256([]byte(gaiSource))
		dir := filepath.Join(os.TempDir(), "raceguard-gai-"+hex.EncodeToString(sum[:8]))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			gaiError = err
			return
		}
		src := filepath.Join(dir, "gai.c")
		if err := os.WriteFile(src, []byte(gaiSource), 0o644); err != nil {
			gaiError = err
			return
		}
		bins := map[Libc]string{}
		for libc, cc := range map[Libc][]string{
			Glibc: {"gcc", "-O2", "-Wall"},
			Musl:  {"musl-gcc", "-static", "-O2", "-Wall"},
		} {
			bin := filepath.Join(dir, "gai-"+string(libc))
			if _, err := os.Stat(bin); err != nil {
				tmp := bin + ".tmp" + strconv.Itoa(os.Getpid())
				if _, err := run(cc[0], append(cc[1:], "-o", tmp, src)...); err != nil {
					gaiError = err
					return
				}
				if err := os.Rename(tmp, bin); err != nil {
					gaiError = err
					return
				}
			}
			bins[libc] = bin
		}
		gaiBins = bins
	})
	return gaiBins[libc], gaiError
}

// Lookup resolves each name with a fresh getaddrinfo in the client pod, using libc's resolver
// and the resolv.conf rc, spreading the names over up to workers client processes.
func (l *Lab) Lookup(libc Libc, family Family, rc ResolvConf, workers int, names ...string) ([]Result, error) {
	if err := l.clientResolv.acquire(l.Client, rc); err != nil {
		return nil, err
	}
	defer l.clientResolv.release()
	return Client{NS: l.Client}.Lookup(libc, family, workers, names...)
}

// resolvGate lets client runs with the same resolv.conf run at once, and makes a run with another
// one wait until they are done before it rewrites the files.
type resolvGate struct {
	mu    sync.Mutex
	cond  *sync.Cond // on mu
	cur   string     // the resolv.conf written last; protected by mu
	users int        // runs using cur; protected by mu
}

func (g *resolvGate) acquire(ns string, rc ResolvConf) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	want := rc.String()
	for g.users > 0 && g.cur != want {
		g.cond.Wait()
	}
	if g.cur != want {
		if err := writeNetnsFiles(ns, rc); err != nil {
			return err
		}
		g.cur = want
	}
	g.users++
	return nil
}

func (g *resolvGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.users--
	if g.users == 0 && g.cond != nil {
		g.cond.Broadcast()
	}
}

// LookupFromNode is Lookup by a client in the node's own namespace, as a hostNetwork pod with
// dnsPolicy ClusterFirstWithHostNet: its packets take the output path, not prerouting. The
// node's resolv.conf applies to every later `ip netns exec` in the node, CoreDNS included (the lab
// Corefiles name their upstreams and search domains, so they do not read it).
func (l *Lab) LookupFromNode(libc Libc, family Family, rc ResolvConf, workers int, names ...string) ([]Result, error) {
	if err := l.nodeResolv.acquire(l.Node, rc); err != nil {
		return nil, err
	}
	defer l.nodeResolv.release()
	return Client{NS: l.Node}.Lookup(libc, family, workers, names...)
}

// Client is where lookups run: a network namespace, whose /etc/netns files the client reads,
// and, for a hostNetwork pod, which shares the node's namespace but not its files, a resolv.conf
// of its own, bound over /etc/resolv.conf in a mount namespace of the client's own.
type Client struct {
	NS         string
	ResolvConf string // a file bound over /etc/resolv.conf; "" for the namespace's own
}

// Lookup resolves each name with a fresh getaddrinfo, using libc's resolver, spreading the names
// over up to workers client processes.
func (c Client) Lookup(libc Libc, family Family, workers int, names ...string) ([]Result, error) {
	bin, err := gaiBinary(libc)
	if err != nil {
		return nil, err
	}
	args := []string{"ip", "netns", "exec", c.NS}
	if c.ResolvConf != "" {
		args = append(args, "unshare", "--mount", "--propagation", "private", "sh", "-c",
			`mount --bind "$0" /etc/resolv.conf && exec "$@"`, c.ResolvConf)
	}
	args = append(args, bin)
	if flag := map[Family]string{Unspec: "", Inet: "-4", Inet6: "-6"}[family]; flag != "" {
		args = append(args, flag)
	}

	workers = max(1, min(workers, len(names)))
	results := make([][]Result, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		var mine []string
		for i := w; i < len(names); i += workers {
			mine = append(mine, names[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[w], errs[w] = runGai(args, bin, mine)
		}()
	}
	wg.Wait()
	out := make([]Result, 0, len(names))
	for w := range workers {
		if errs[w] != nil {
			return nil, errs[w]
		}
		out = append(out, results[w]...)
	}
	return out, nil
}

// WriteResolvConf writes text as namespace ns's resolv.conf, with the lab's hosts and
// nsswitch.conf, for the clients and servers started in it later.
func WriteResolvConf(ns, text string) error { return writeNetnsText(ns, text) }

// runGai runs one client process, the command args that runs bin, over names and parses its
// output.
func runGai(args []string, bin string, names []string) ([]Result, error) {
	cmd := exec.Command(args[0], append(args[1:len(args):len(args)], names...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// A lookup can take at most attempts*timeout per search candidate (30 s at the defaults with
	// five candidates); a whole client run is bounded well above that.
	timer := time.AfterFunc(time.Duration(len(names))*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var out []Result
	s := bufio.NewScanner(stdout)
	for s.Scan() {
		f := strings.Split(s.Text(), "\t")
		if len(f) != 5 {
			continue
		}
		us, _ := strconv.ParseInt(f[2], 10, 64)
		start, _ := strconv.ParseInt(f[4], 10, 64)
		r := Result{Name: f[0], Elapsed: time.Duration(us) * time.Microsecond, Started: time.UnixMicro(start), Ended: time.Now()}
		if f[1] != "OK" {
			r.Err = f[1]
		}
		if f[3] != "" {
			r.Addrs = strings.Split(f[3], ",")
			slices.Sort(r.Addrs)
			r.Addrs = slices.Compact(r.Addrs)
		}
		out = append(out, r)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("client %s: %v: %s", filepath.Base(bin), err, stderr.String())
	}
	if len(out) != len(names) {
		return nil, fmt.Errorf("client %s: %d results for %d names: %s", filepath.Base(bin), len(out), len(names), stderr.String())
	}
	return out, nil
}

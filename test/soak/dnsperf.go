package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// dnsperfPID is the process id of the dnsperf running, or 0, for the samples' CPU figures.
var dnsperfPID atomic.Int64

// perf is what one dnsperf run reported.
type perf struct {
	sent, completed, lost int
	qps                   float64
	rcodes                string // dnsperf's "Response codes" line
	servfail              int
	lat                   *hist // per-query latencies, from -v; nil without it
	timeouts              int   // "> T" lines of -v: queries dnsperf gave up on
	cpu                   time.Duration
}

var (
	sentRe      = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	completedRe = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	lostRe      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	qpsRe       = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	rcodesRe    = regexp.MustCompile(`Response codes:\s+(.*)`)
	servfailRe  = regexp.MustCompile(`SERVFAIL (\d+)`)
)

// dnsperf runs dnsperf in namespace ns against the ClusterIP, so that every query crosses the
// node's DNAT and fault rule, with query file qfile and extra arguments. With verbose it adds -v
// and reads the per-query lines as they come (about a million in a soak), keeping only a
// histogram of their latencies.
func dnsperf(ctx context.Context, ns, qfile string, verbose bool, args ...string) (perf, error) {
	argv := append([]string{"netns", "exec", ns, "dnsperf", "-s", lab.ClusterIP, "-d", qfile}, args...)
	if verbose {
		argv = append(argv, "-v")
	}
	cmd := exec.CommandContext(ctx, "ip", argv...)
	// ip execs dnsperf in place: the process ip starts is dnsperf, and it dies with this program.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return perf{}, err
	}
	if err := cmd.Start(); err != nil {
		return perf{}, err
	}
	dnsperfPID.Store(int64(cmd.Process.Pid))
	defer dnsperfPID.Store(0)
	p := perf{}
	if verbose {
		p.lat = newHist()
	}
	var rest strings.Builder // everything but the per-query lines: the statistics
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "> ") {
			rest.WriteString(line)
			rest.WriteByte('\n')
			continue
		}
		// "> NOERROR name A 0.000368", or "> T name A" for a query that timed out.
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == "T" {
			p.timeouts++
			continue
		}
		if len(f) == 5 && p.lat != nil {
			if s, err := strconv.ParseFloat(f[4], 64); err == nil {
				p.lat.add(time.Duration(s * float64(time.Second)))
			}
		}
	}
	err = cmd.Wait()
	if cmd.ProcessState != nil {
		p.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return p, fmt.Errorf("dnsperf %s: %v: %s%s", strings.Join(args, " "), err, stderr.String(), tail(rest.String(), 2000))
	}
	s := rest.String()
	num := func(re *regexp.Regexp) float64 {
		m := re.FindStringSubmatch(s)
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	p.sent, p.completed, p.lost = int(num(sentRe)), int(num(completedRe)), int(num(lostRe))
	p.qps, p.servfail = num(qpsRe), int(num(servfailRe))
	if m := rcodesRe.FindStringSubmatch(s); m != nil {
		p.rcodes = strings.TrimSpace(m[1])
	}
	if !sentRe.MatchString(s) {
		return p, fmt.Errorf("dnsperf printed no statistics: %s%s", stderr.String(), tail(s, 2000))
	}
	return p, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/raceguard/raceguard/test/dnsperf"
	"github.com/raceguard/raceguard/test/lab"
)

// dnsperfPID is the process id of the dnsperf running, or 0, for the samples' CPU figures.
var dnsperfPID atomic.Int64

// perf is what one dnsperf run reported.
type perf struct {
	dnsperf.Stats
	lat      *hist // per-query latencies, from -v; nil without it
	timeouts int   // "> T" lines of -v: queries dnsperf gave up on
	cpu      time.Duration
}

// runDNSPerf runs dnsperf in namespace ns against the ClusterIP, so that every query crosses the
// node's DNAT and fault rule, with query file qfile and extra arguments. With verbose it adds -v
// and reads the per-query lines as they come (about a million in a soak), keeping only a
// histogram of their latencies.
func runDNSPerf(ctx context.Context, ns, qfile string, verbose bool, args ...string) (perf, error) {
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
		q, ok := dnsperf.ParseQuery(line)
		switch {
		case !ok:
			rest.WriteString(line)
			rest.WriteByte('\n')
		case q.Timeout:
			p.timeouts++
		case q.Answered() && p.lat != nil:
			p.lat.add(q.Latency)
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
	if p.Stats, err = dnsperf.ParseStats(s); err != nil {
		return p, fmt.Errorf("%w: %s%s", err, stderr.String(), tail(s, 2000))
	}
	return p, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

package dnsperf

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// Stats is what dnsperf reported in the statistics of a run.
type Stats struct {
	Sent, Completed, Lost int
	QPS                   float64 // queries per second
	Latency               float64 // mean latency in seconds
	RCodes                string  // the "Response codes:" line: "NOERROR 100 (50.00%), SERVFAIL 50 (25.00%)"
}

var (
	sentRe      = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	completedRe = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	lostRe      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	qpsRe       = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	latencyRe   = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	rcodesRe    = regexp.MustCompile(`Response codes:\s+(.*)`)
)

// ErrNoStatistics is returned by ParseStats for output without dnsperf's statistics: dnsperf
// failed, or was stopped before it printed them.
var ErrNoStatistics = errors.New("dnsperf printed no statistics")

// ParseStats reads the statistics from out, dnsperf's output. Lines of -v may be in it. Without
// statistics it returns ErrNoStatistics, and Stats with whatever figures out has.
func ParseStats(out string) (Stats, error) {
	num := func(re *regexp.Regexp) float64 {
		m := re.FindStringSubmatch(out)
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	s := Stats{
		Sent: int(num(sentRe)), Completed: int(num(completedRe)), Lost: int(num(lostRe)),
		QPS: num(qpsRe), Latency: num(latencyRe),
	}
	if m := rcodesRe.FindStringSubmatch(out); m != nil {
		s.RCodes = strings.TrimSpace(m[1])
	}
	if !sentRe.MatchString(out) {
		return s, ErrNoStatistics
	}
	return s, nil
}

// RCode returns how many replies had rcode (NOERROR, SERVFAIL, ...), 0 if the run had none.
func (s Stats) RCode(rcode string) int {
	for _, c := range strings.Split(s.RCodes, ", ") {
		if f := strings.Fields(c); len(f) >= 2 && f[0] == rcode {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

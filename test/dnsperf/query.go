package dnsperf

import (
	"strconv"
	"strings"
	"time"
)

// Query is one per-query line of dnsperf -v.
type Query struct {
	RCode      string        // NOERROR, SERVFAIL, ...; "" for a query dnsperf gave up on
	Name, Type string        // the query
	Latency    time.Duration // of an answered query
	Timeout    bool          // dnsperf gave up on the query: "> T name type"
}

// Answered reports whether q is a reply with its latency.
func (q Query) Answered() bool { return q.RCode != "" }

// ParseQuery parses a per-query line of dnsperf -v: "> NOERROR name A 0.000368", or "> T name A"
// for a query that timed out. ok is false for a line of any other kind, such as the statistics; a
// per-query line in another shape gives ok and a Query neither answered nor timed out.
func ParseQuery(line string) (q Query, ok bool) {
	if !strings.HasPrefix(line, "> ") {
		return Query{}, false
	}
	f := strings.Fields(line)
	switch {
	case len(f) >= 2 && f[1] == "T":
		q.Timeout = true
		if len(f) >= 4 {
			q.Name, q.Type = f[2], f[3]
		}
	case len(f) == 5:
		s, err := strconv.ParseFloat(f[4], 64)
		if err != nil {
			break
		}
		q = Query{RCode: f[1], Name: f[2], Type: f[3], Latency: time.Duration(s * float64(time.Second))}
	}
	return q, true
}

package dnsperf

import (
	"strings"
	"testing"
	"time"
)

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []Query
	}{
		{"verbose.txt", []Query{
			{RCode: "NOERROR", Name: "web.default.svc.cluster.local", Type: "A", Latency: 305 * time.Microsecond},
			{RCode: "NXDOMAIN", Name: "nosuch.default.svc.cluster.local", Type: "A", Latency: 110 * time.Microsecond},
			{RCode: "NOERROR", Name: "web.default.svc.cluster.local", Type: "AAAA", Latency: 227 * time.Microsecond},
			{RCode: "SERVFAIL", Name: "example.org", Type: "A", Latency: 210 * time.Microsecond},
		}},
		{"timeouts.txt", []Query{
			{RCode: "NXDOMAIN", Name: "web.default.svc.cluster.local", Type: "AAAA", Latency: 96 * time.Microsecond},
			{RCode: "NXDOMAIN", Name: "example.org", Type: "A", Latency: 43 * time.Microsecond},
			{Name: "web.default.svc.cluster.local", Type: "A", Timeout: true},
			{Name: "nosuch.default.svc.cluster.local", Type: "A", Timeout: true},
		}},
		{"stats.txt", nil},
	} {
		var got []Query
		for _, line := range strings.Split(readOutput(t, tc.file), "\n") {
			if q, ok := ParseQuery(line); ok {
				got = append(got, q)
			}
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%s: Expected %d query lines, got %d: %+v", tc.file, len(tc.want), len(got), got)
		}
		for i, q := range got {
			// The latency is printed in microseconds; its float may be a nanosecond off.
			if d := q.Latency - tc.want[i].Latency; d < -time.Nanosecond || d > time.Nanosecond {
				t.Errorf("%s line %d: Expected latency %s, got %s", tc.file, i, tc.want[i].Latency, q.Latency)
			}
			q.Latency = tc.want[i].Latency
			if q != tc.want[i] {
				t.Errorf("%s line %d: Expected %+v, got %+v", tc.file, i, tc.want[i], q)
			}
			if q.Answered() == q.Timeout {
				t.Errorf("%s line %d: Expected a query either answered or timed out, got %+v", tc.file, i, q)
			}
		}
	}

	// A per-query line of another shape is a query line still, but neither answered nor timed out.
	if q, ok := ParseQuery("> NOERROR example.org A"); !ok || q.Answered() || q.Timeout {
		t.Errorf("Expected a malformed query line taken as such and ignored, got %+v, %v", q, ok)
	}
}

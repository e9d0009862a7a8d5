package dnsperf

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func readOutput(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The testdata files are dnsperf 2.10.0's own output: against CoreDNS serving the sample cluster
// zone and forwarding to a closed port (SERVFAIL), with and without -v, and against a server that
// answers every second query only (timeouts).
func TestParseStats(t *testing.T) {
	for _, tc := range []struct {
		file                        string
		want                        Stats
		noerror, nxdomain, servfail int
	}{
		{"stats.txt", Stats{Sent: 200, Completed: 200, Lost: 0, QPS: 30548.342752, Latency: 0.001269,
			RCodes: "NOERROR 100 (50.00%), SERVFAIL 50 (25.00%), NXDOMAIN 50 (25.00%)"}, 100, 50, 50},
		{"verbose.txt", Stats{Sent: 4, Completed: 4, Lost: 0, QPS: 2510.985562, Latency: 0.000213,
			RCodes: "NOERROR 2 (50.00%), SERVFAIL 1 (25.00%), NXDOMAIN 1 (25.00%)"}, 2, 1, 1},
		{"timeouts.txt", Stats{Sent: 4, Completed: 2, Lost: 2, QPS: 859.106529, Latency: 0.000069,
			RCodes: "NXDOMAIN 2 (100.00%)"}, 0, 2, 0},
	} {
		got, err := ParseStats(readOutput(t, tc.file))
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
		}
		if got != tc.want {
			t.Errorf("%s: Expected %+v, got %+v", tc.file, tc.want, got)
		}
		for rcode, want := range map[string]int{"NOERROR": tc.noerror, "NXDOMAIN": tc.nxdomain, "SERVFAIL": tc.servfail} {
			if n := got.RCode(rcode); n != want {
				t.Errorf("%s: Expected %d %s, got %d", tc.file, want, rcode, n)
			}
		}
	}

	if _, err := ParseStats(readOutput(t, "error.txt")); !errors.Is(err, ErrNoStatistics) {
		t.Errorf("Expected ErrNoStatistics for dnsperf's error output, got %v", err)
	}
}

package lab

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// UDPStats are a network namespace's UDP counters from /proc/net/snmp. The buffer errors are
// datagrams the kernel dropped because a socket's receive (or send) buffer was full: loss no DNS
// server sees, which a benchmark must tell apart from queries a server lost.
type UDPStats struct {
	InErrors, RcvbufErrors, SndbufErrors int
}

// BufferDrops returns the datagrams dropped at full socket buffers.
func (s UDPStats) BufferDrops() int { return s.RcvbufErrors + s.SndbufErrors }

// Sub returns the counters' growth from b to s.
func (s UDPStats) Sub(b UDPStats) UDPStats {
	return UDPStats{s.InErrors - b.InErrors, s.RcvbufErrors - b.RcvbufErrors, s.SndbufErrors - b.SndbufErrors}
}

// ReadUDPStats reads the UDP counters of namespace ns, or of the caller's own when ns is empty.
func ReadUDPStats(ns string) (UDPStats, error) {
	var b []byte
	var err error
	if ns == "" {
		b, err = os.ReadFile("/proc/net/snmp")
	} else {
		b, err = exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").Output()
	}
	if err != nil {
		return UDPStats{}, fmt.Errorf("read /proc/net/snmp in %q: %v", ns, err)
	}
	return parseSNMP(string(b))
}

// parseSNMP reads the Udp lines of /proc/net/snmp: a header line of names, then one of values.
func parseSNMP(text string) (UDPStats, error) {
	var head []string
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, "Udp: ")
		if !ok {
			continue
		}
		if head == nil {
			head = strings.Fields(rest)
			continue
		}
		var s UDPStats
		for i, v := range strings.Fields(rest) {
			if i >= len(head) {
				break
			}
			n, _ := strconv.Atoi(v)
			switch head[i] {
			case "InErrors":
				s.InErrors = n
			case "RcvbufErrors":
				s.RcvbufErrors = n
			case "SndbufErrors":
				s.SndbufErrors = n
			}
		}
		return s, nil
	}
	return UDPStats{}, fmt.Errorf("no Udp lines in /proc/net/snmp")
}

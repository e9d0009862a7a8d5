package lab

import (
	"fmt"
	"strings"
)

// SetBackendsOn makes the ClusterIP DNAT, at random, to ips on port instead of 53: to a second
// set of DNS servers running beside the first, so that a test can send the client to either
// without restarting one (two servers measured by turns see the same load on the machine).
// Flows the old backends had are forgotten (flushConntrack).
func (l *Lab) SetBackendsOn(port int, ips ...string) error {
	if len(ips) == 0 {
		return fmt.Errorf("backends: no address")
	}
	var m []string
	for i, ip := range ips {
		m = append(m, fmt.Sprintf("%d : %s", i, ip))
	}
	script := "flush chain ip kube prerouting\n" +
		"add rule ip kube prerouting ip daddr " + ClusterIP + " meta l4proto { udp, tcp } th dport 53 dnat to numgen random mod " +
		fmt.Sprint(len(ips)) + " map { " + strings.Join(m, ", ") + " } : " + fmt.Sprint(port) + "\n"
	if _, err := runInput(script, "ip", "netns", "exec", l.Node, "nft", "-f", "-"); err != nil {
		return err
	}
	return l.flushConntrack()
}

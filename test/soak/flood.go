package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/hostile"
	"github.com/raceguard/raceguard/test/lab"
)

// The flood is a random-subdomain attack ("water torture") mixed into the soak's load: a
// hostNetwork pod (the node's own address, in the node namespace ns) sends first tries of names that
// exist nowhere, each new, at rate a second for the soak's length. Every one must be answered, as
// stock answers it, while its walks stay within the walk cap and its client's trails.
func runFlood(ns string, rate int, d time.Duration) (hostile.FloodResult, error) {
	if rate == 0 {
		return hostile.FloodResult{}, nil
	}
	salt := rand.Uint32()
	f := hostile.Flood{
		Addrs: []net.IP{net.ParseIP(lab.NodeIP)}, NS: ns, Rate: rate, N: rate * int(d.Seconds()),
		Type: dns.TypeA, Wait: 5 * time.Second,
		Name: func(i int) string { return fmt.Sprintf("r%x-%d.example.com.default.svc.cluster.local.", salt, i) },
	}
	return f.Run(lab.NodeIP + ":53")
}

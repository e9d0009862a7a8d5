package hostile

import (
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// Amplified is what a flood cost upstream.
type Amplified struct {
	Flood    FloodResult
	Upstream int // queries the upstream got for the flood
}

// PerPacket is the upstream queries per client packet.
func (a Amplified) PerPacket() float64 {
	if a.Flood.Sent == 0 {
		return 0
	}
	return float64(a.Upstream) / float64(a.Flood.Sent)
}

// Amplification runs bin on l, forwarding to an upstream of its own that counts what it gets (the
// cluster zone and the lab's internet: kube-dns and beyond, as a node-local server sees them),
// sends it f, and returns the upstream queries the flood cost once they stop coming (a walk's
// tries may outlive the answer its first try got).
func Amplification(bin, dir string, l Layout, f Flood) (Amplified, error) {
	up, err := lab.StartKubeUpstream("", "127.0.0.1:0")
	if err != nil {
		return Amplified{}, err
	}
	defer up.Close()
	s, err := start(bin, dir, "amplification", l, up.Addr)
	if err != nil {
		return Amplified{}, err
	}
	defer s.proc.Stop()
	up.Reset() // the start-up probe's
	res, err := f.Run(s.addr)
	if err != nil {
		return Amplified{}, err
	}
	last, stable := up.Total(), time.Now()
	settle(5*time.Second, func() bool {
		if n := up.Total(); n != last {
			last, stable = n, time.Now()
		}
		return time.Since(stable) > 500*time.Millisecond
	})
	return Amplified{Flood: res, Upstream: last}, nil
}

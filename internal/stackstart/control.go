package stackstart

import (
	"runtime/metrics"
	"sync"
)

// controller sets the number of holders. It is used by run's goroutine only.
//
// The runtime recomputes the starting size at every GC from the goroutines alive at that moment,
// and under load many of them are queries not yet started, whose used stack is almost nothing: a
// saturated server's goroutines went from 30 to 255 between one GC and the next, so the mean moves
// by as much, more than the factor of two one size spans. So the controller aims at a range, from
// the target to maxStart, and corrects the holders from what the runtime chose: the first number
// is an estimate from the last GC's figures, then once a second, half as many more if any GC it
// sampled chose less than the target, an eighth fewer if any chose more than maxStart and none
// less. Up to maxStart a larger start costs memory only; beyond it, it costs more than the copies
// saved.
type controller struct {
	target  uint64
	holders []chan struct{} // closing one ends its holder
	wg      sync.WaitGroup  // the holders' goroutines
	samples []metrics.Sample

	gcs                uint64 // the GC cycle count at the last sample
	seen, below, above int    // GCs sampled since the last decision; of them, those that chose under the target, over maxStart
}

// The runtime/metrics the controller reads, in the order of controller.samples.
var sampleNames = []string{
	"/gc/cycles/total:gc-cycles",
	"/gc/scan/stack:bytes",          // the used stack the last GC scanned
	"/sched/goroutines:goroutines",  // the goroutines alive, the ones a GC scans
	"/gc/stack/starting-size:bytes", // what the last GC made of them
}

func newController(target uint64) *controller {
	c := &controller{target: target}
	for _, n := range sampleNames {
		c.samples = append(c.samples, metrics.Sample{Name: n})
	}
	c.gcs, _, _, _ = c.read()
	return c
}

// read returns the runtime's figures: GC cycles, the used stack the last one scanned, the
// goroutines alive, and the starting size the last GC chose.
func (c *controller) read() (gcs, scanned, goroutines, size uint64) {
	metrics.Read(c.samples)
	return c.samples[0].Value.Uint64(), c.samples[1].Value.Uint64(), c.samples[2].Value.Uint64(), c.samples[3].Value.Uint64()
}

// sample reads the starting size the last GC chose, and tallies it if that GC is new.
func (c *controller) sample() {
	gcs, _, _, size := c.read()
	startingSize.Set(float64(size))
	if gcs == c.gcs {
		return
	}
	c.gcs = gcs
	c.seen++
	switch {
	case size < c.target:
		c.below++
	case size > maxStart:
		c.above++
	}
}

// decide sets the number of holders from the GCs sampled since the last decision.
func (c *controller) decide() {
	h := len(c.holders)
	switch {
	case c.seen == 0:
		// No GC ran: the starting size did not change.
	case c.below > 0:
		c.set(min(maxHolders, h+max(2, h/2)))
	case c.above > 0 && h > 0:
		c.set(h - max(1, h/8))
	}
	c.seen, c.below, c.above = 0, 0, 0
}

// firstEstimate is estimate from the runtime's figures now, taking every goroutine for an idle
// one (1 KiB) if no GC has scanned them yet.
func (c *controller) firstEstimate() int {
	gcs, scanned, goroutines, _ := c.read()
	if gcs == 0 {
		scanned = goroutines << 10
	}
	return c.estimate(scanned, goroutines)
}

// estimate returns how many holders bring the mean used stack of goroutines goroutines, of which
// a GC scanned scanned bytes with the holders of now among them, to the middle of the band that
// rounds to the target.
func (c *controller) estimate(scanned, goroutines uint64) int {
	h := uint64(len(c.holders))
	others := max(goroutines, h+1) - h
	otherBytes := scanned - min(scanned, h*holdBytes)
	lo, hi := c.target/2-guard, c.target-guard
	mid := (lo + hi) / 2
	if otherBytes >= mid*others {
		return 0
	}
	n := (mid*others - otherBytes + holdBytes - mid - 1) / (holdBytes - mid)
	return int(min(n, maxHolders))
}

// set parks or ends holders until n are parked.
func (c *controller) set(n int) {
	for len(c.holders) < n {
		stop := make(chan struct{})
		c.holders = append(c.holders, stop)
		c.wg.Go(func() { hold(holdFrames, stop) })
	}
	for len(c.holders) > n {
		last := len(c.holders) - 1
		close(c.holders[last])
		c.holders = c.holders[:last]
	}
	holdersGauge.Set(float64(n))
}

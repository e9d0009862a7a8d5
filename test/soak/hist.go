package main

import (
	"fmt"
	"slices"
	"time"
)

// hist counts latencies at microsecond resolution. Latencies take few distinct values (a few
// thousand microsecond values below the timeout), so a map of exact counts stays small however
// many queries pass, and the percentiles are exact.
type hist struct {
	counts map[int64]int64 // microseconds -> observations
	n      int64
	max    int64
}

func newHist() *hist { return &hist{counts: map[int64]int64{}} }

func (h *hist) add(d time.Duration) {
	us := d.Microseconds()
	h.counts[us]++
	h.n++
	h.max = max(h.max, us)
}

// quantiles returns the latencies at each quantile q (0 < q <= 1): the smallest value at or
// below which at least q of the observations lie.
func (h *hist) quantiles(qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	if h.n == 0 {
		return out
	}
	keys := make([]int64, 0, len(h.counts))
	for k := range h.counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, q := range qs {
		rank := int64(q*float64(h.n) + 0.999999)
		rank = max(1, min(h.n, rank))
		var seen int64
		for _, k := range keys {
			seen += h.counts[k]
			if seen >= rank {
				out[i] = time.Duration(k) * time.Microsecond
				break
			}
		}
	}
	return out
}

// atLeast returns how many observations are at least d.
func (h *hist) atLeast(d time.Duration) int64 {
	var n int64
	for k, c := range h.counts {
		if time.Duration(k)*time.Microsecond >= d {
			n += c
		}
	}
	return n
}

// percentileCells formats p50, p90, p99, p99.9 and max as table cells.
func (h *hist) percentileCells() string {
	q := h.quantiles(0.5, 0.9, 0.99, 0.999)
	return fmt.Sprintf("%s | %s | %s | %s | %s", dur(q[0]), dur(q[1]), dur(q[2]), dur(q[3]), dur(time.Duration(h.max)*time.Microsecond))
}

func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3f s", d.Seconds())
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// hitLatencyRows compare the latency of cache hits, stock against raceguard, at a fixed rate of
// half of what stock serves on one core: the rate is stock's queries per CPU second under full
// load (each server alone on its CPU, interleaved rounds), halved. An A/A row (stock against
// stock at the same rate) says how far this machine moves the figures on its own.
func hitLatencyRows(bin, dir string) ([]row, []string, error) {
	up, err := lab.StartUpstream("", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer up.Close()
	stock, rg := side{lab.StockCorefile, cacheHitQueries}, side{lab.RaceguardCorefile, cacheHitQueries}
	capacity, err := compareRuns(bin, dir, "hitcap", stock, rg, up.Addr, false, false)
	if err != nil {
		return nil, nil, err
	}
	rate := int(capacity.a.perCPUSecond() / 2)
	lat, err := fixedRate(bin, dir, "hitrate", stock, rg, up.Addr, rate)
	if err != nil {
		return nil, nil, err
	}
	noise, err := fixedRate(bin, dir, "hitrate-aa", stock, stock, up.Addr, rate)
	if err != nil {
		return nil, nil, err
	}
	perRound := func(l latencies) string {
		var b strings.Builder
		for k := range l[0] {
			fmt.Fprintf(&b, " %s/%s", percentile(l[0][k], 0.5).Round(time.Microsecond), percentile(l[1][k], 0.5).Round(time.Microsecond))
		}
		return b.String()
	}
	notes := []string{
		"Cache-hit latency, p50 of each round, stock/raceguard:" + perRound(lat),
		"Its noise row, p50 of each round, stock/stock:" + perRound(noise),
	}
	return []row{
		{fmt.Sprintf("Cache hits under full load, each server alone on CPU %s, %d interleaved rounds: queries per CPU second (half of stock's is the rate below)", serverCPU, *rounds),
			fmt.Sprintf("%.0f", capacity.a.perCPUSecond()), fmt.Sprintf("%.0f", capacity.b.perCPUSecond()), pct(capacity.ratio)},
		latencyRow(fmt.Sprintf("Cache-hit latency at %s, half of stock's capacity, each server alone on CPU %s, %d interleaved runs: stock against raceguard, p50 / p99 (medians over runs; ratios: medians of per-round ratios)", lat.load(), serverCPU, *rateRounds), lat),
		latencyRow("Noise of that row: stock against stock, p50 / p99", noise),
	}, notes, nil
}

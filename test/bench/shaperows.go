package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"

	"github.com/raceguard/raceguard/test/kubeapi"
	"github.com/raceguard/raceguard/test/lab"
)

// shapesGroup runs the single-server rows with an upstream of their own, pinned with this
// process to the load's CPU.
func shapesGroup(bin, dir string) ([]row, error) {
	unpin, err := pinSelf(loadCPU)
	if err != nil {
		return nil, err
	}
	defer unpin()
	up, err := lab.StartKubeUpstream("", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	api := kubeapi.Serve(ln, kubeapi.Sample(kubeapi.Pod{Namespace: "default", Name: "dnsperf", IP: "127.0.0.1", Node: benchNode}))
	defer api.Close()
	kubeconfig, err := api.WriteKubeconfig(dir)
	if err != nil {
		return nil, err
	}
	return shapeRows(bin, dir, up.Addr, kubeconfig)
}

// shapeRows measures cache hits in each Corefile shape, each server alone on its CPU, five
// columns interleaved: stock, stock again (the A/A row), stock with raceguard's stack-start
// mechanism alone, raceguard, and raceguard with that mechanism off.
func shapeRows(bin, dir, upstream, kubeconfig string) ([]row, error) {
	queries := shapeHitQueries()
	var rows []row
	for _, sh := range shapes {
		cols := []column{
			{label: "stock", corefile: sh.stock},
			{label: "stock again", corefile: sh.stock},
			{label: "stock with the stack-start mechanism", corefile: withMechanism(sh.stock)},
			{label: "raceguard", corefile: sh.raceguard},
			{label: "raceguard, RACEGUARD_STACK_START=off", corefile: sh.raceguard, env: []string{"RACEGUARD_STACK_START=off"}},
		}
		a, done, err := runAlone(bin, dir, "shape-"+sh.name, cols, queries, upstream, kubeconfig, true)
		if err != nil {
			done()
			return nil, err
		}
		state := mechanismState(a.servers[3])
		done()
		method := fmt.Sprintf("each server alone on CPU %s with GOMAXPROCS=1, dnsperf (64 clients, %d cache-hit names) and the upstream on CPU %s, %d interleaved rounds of %d s; medians, and ratios the medians of per-round ratios", serverCPU, len(queries), loadCPU, *rounds, *seconds)
		both := func(i int) string { return pct(a.cpuRatio(i)) + "; " + pct(a.qpsRatio(i)) }
		rows = append(rows,
			row{fmt.Sprintf("**%s** Corefile: cache hits, server CPU per query; queries/s (%s)", sh.name, method), a.cell(0), a.cell(3), both(3)},
			row{fmt.Sprintf("%s: noise, stock against stock", sh.name), a.cell(0), a.cell(1), both(1)},
			row{fmt.Sprintf("%s: stock with raceguard's stack-start mechanism alone (a raceguard in a server block no query reaches)", sh.name), a.cell(0), a.cell(2), both(2)},
			row{fmt.Sprintf("%s: raceguard with the mechanism off (RACEGUARD_STACK_START=off)", sh.name), a.cell(0), a.cell(4), both(4)},
			row{fmt.Sprintf("%s: share of the server's CPU profile under runtime.newstack (stack growth), by the function that grew it; the compare column: the mechanism alone, raceguard with it off", sh.name),
				growthCell(a.profiles[0]), growthCell(a.profiles[3]), growthCell(a.profiles[2]) + "; " + growthCell(a.profiles[4])},
			row{fmt.Sprintf("%s: raceguard's mechanism at the end: holders parked, the runtime's starting stack size", sh.name), "", state, ""},
		)
	}
	return rows, nil
}

var gaugeLine = regexp.MustCompile(`(?m)^coredns_raceguard_stack_start_(holders|bytes) (\S+)$`)

// mechanismState scrapes the stack-start gauges of a raceguard server.
func mechanismState(s *server) string {
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	v := map[string]string{}
	for _, m := range gaugeLine.FindAllStringSubmatch(string(b), -1) {
		v[m[1]] = m[2]
	}
	return fmt.Sprintf("%s holders; %s bytes", v["holders"], v["bytes"])
}

// Command bench measures stock CoreDNS against the raceguard build side by side, in one run, on
// this machine, and prints a markdown table. `make bench` runs it; the README carries its latest
// output.
//
// Both columns use the same custom CoreDNS binary: "stock" runs a Corefile without the raceguard
// directives (with stock autopath where the row is about autopath), "raceguard" the same Corefile
// with them. The shape rows run each server alone on its core in the Corefiles users run
// (shapes.go, alone.go); the other throughput rows load two servers on one core at once
// (throughput.go); the lookup rows run real glibc and musl clients in the network-namespace lab
// (root only).
// Absolute timings on a shared 2-core machine are noisy: compare the columns, not runs.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

var (
	corednsFlag  = flag.String("coredns", os.Getenv("RACEGUARD_COREDNS"), "custom CoreDNS binary (default ./coredns)")
	seconds      = flag.Int("seconds", 5, "length of each dnsperf run")
	rounds       = flag.Int("rounds", 9, "dnsperf rounds of each throughput comparison")
	warmFor      = flag.Int("warm", 10, "seconds of load each single-server row's server gets before its rounds")
	rateRounds   = flag.Int("rate-rounds", 9, "interleaved dnsperf rounds of the fixed-rate latency row")
	keepProfiles = flag.String("profiles", "", "keep the CPU profiles of the throughput rows in this directory")
	lookups      = flag.Int("lookups", 400, "lookups per C library in the stall row")
	workers      = flag.Int("workers", 32, "client processes in the stall row")
	dropPercent  = flag.Int("drop", 5, "emulated pair drop, percent")
	stallFor     = flag.Duration("stall", 60*time.Second, "length of the stalled-upstream flood")
	only         = flag.String("only", "", "run only these row groups, comma-separated: shapes, throughput, latency, hostile, lab, family")
)

func want(group string) bool {
	return *only == "" || slices.Contains(strings.Split(*only, ","), group)
}

// row is one line of the table.
type row struct {
	measure, stock, raceguard, compare string
}

func main() {
	flag.Parse()
	bin := *corednsFlag
	if bin == "" {
		var err error
		if bin, err = lab.RepoPath("coredns"); err != nil {
			fail(err)
		}
	}
	if _, err := os.Stat(bin); err != nil {
		fail(fmt.Errorf("%v (run make coredns)", err))
	}
	dir, err := os.MkdirTemp("", "raceguard-bench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)

	var rows []row
	var notes []string
	loadable := true // dnsperf and taskset are there
	if _, err := exec.LookPath("dnsperf"); err != nil {
		loadable = false
		notes = append(notes, "dnsperf rows skipped: dnsperf not installed (apt-get install dnsperf)")
	} else if _, err := exec.LookPath("taskset"); err != nil {
		loadable = false
		notes = append(notes, "dnsperf rows skipped: taskset not installed (apt-get install util-linux)")
	}
	if loadable && want("shapes") {
		r, err := shapesGroup(bin, dir)
		if err != nil {
			fail(err)
		}
		rows = append(rows, r...)
	}
	if loadable && want("throughput") {
		r, n, err := throughputRows(bin, dir)
		if err != nil {
			fail(err)
		}
		rows = append(rows, r...)
		notes = append(notes, n...)
	}
	if loadable && want("latency") {
		r, n, err := hitLatencyRows(bin, dir)
		if err != nil {
			fail(err)
		}
		rows = append(rows, r...)
		notes = append(notes, n...)
	}
	if want("hostile") {
		r, err := hostileRows(bin, dir)
		if err != nil {
			fail(err)
		}
		rows = append(rows, r...)
	}
	if err := lab.Available(); err != nil {
		notes = append(notes, "lab rows skipped: "+err.Error())
	} else if want("lab") {
		r, err := labRows(bin)
		if err != nil {
			fail(err)
		}
		rows = append(rows, r...)
	}
	if lab.Available() == nil && want("family") {
		r, err := familyRows(bin)
		if err != nil {
			fail(err)
		}
		rows = append(rows, r...)
	}
	printTable(rows, notes)
}

func printTable(rows []row, notes []string) {
	fmt.Printf("`make bench`, %s, %s\n\n", time.Now().UTC().Format("2006-01-02"), lab.Machine())
	fmt.Println("| Measure | Stock CoreDNS | raceguard | raceguard vs stock |")
	fmt.Println("|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s |\n", r.measure, r.stock, r.raceguard, r.compare)
	}
	for _, n := range notes {
		fmt.Printf("\n%s\n", n)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

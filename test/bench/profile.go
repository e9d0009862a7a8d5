package main

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// fetchProfile fetches a CPU profile of the server whose pprof plugin listens at addr, over most
// of a run, into dir (and -profiles), and returns its path, or "" if it could not.
func fetchProfile(addr, dir, name string) string {
	secs := max(1, *seconds-1)
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	path := filepath.Join(dir, name+".pprof")
	f, err := os.Create(path)
	if err != nil {
		return ""
	}
	_, err = io.Copy(f, resp.Body)
	f.Close()
	if err != nil {
		return ""
	}
	if *keepProfiles != "" {
		if b, err := os.ReadFile(path); err == nil {
			os.WriteFile(filepath.Join(*keepProfiles, name+".pprof"), b, 0o644)
		}
	}
	return path
}

// takeProfile is fetchProfile's profile as the top of a pprof -top (or why not).
func takeProfile(addr, dir, name string) string {
	path := fetchProfile(addr, dir, name)
	if path == "" {
		return "profile: not fetched"
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=12", path).CombinedOutput()
	if err != nil {
		return "profile: " + err.Error()
	}
	return topOf(string(out))
}

// topOf keeps the header's total and the table of a pprof -top output.
func topOf(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Total samples") || strings.Contains(l, "flat%") || strings.HasPrefix(strings.TrimSpace(l), "0") ||
			len(strings.Fields(l)) >= 6 && strings.HasSuffix(strings.Fields(l)[1], "%") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// stackGrowth reads a CPU profile's samples and returns the share of them under runtime.newstack
// (a goroutine's stack grown by copying, or a preemption), and that share by the function whose
// call needed more stack, largest first.
func stackGrowth(path string) (share float64, by []grower, err error) {
	out, err := exec.Command("go", "tool", "pprof", "-traces", path).Output()
	if err != nil {
		return 0, nil, err
	}
	var total, under float64
	caller := map[string]float64{}
	for _, block := range strings.Split(string(out), "-----------+-------------------------------------------------------") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		f := strings.Fields(lines[0])
		if len(f) < 2 {
			continue
		}
		t, ok := duration(f[0])
		if !ok {
			continue
		}
		frames := []string{f[1]}
		for _, l := range lines[1:] {
			if g := strings.Fields(l); len(g) > 0 {
				frames = append(frames, g[0])
			}
		}
		total += t
		if k := slices.Index(frames, "runtime.newstack"); k >= 0 {
			under += t
			if k+1 < len(frames) {
				caller[frames[k+1]] += t
			}
		}
	}
	if total == 0 {
		return 0, nil, fmt.Errorf("%s: no samples", path)
	}
	for fn, t := range caller {
		by = append(by, grower{fn, t / total})
	}
	slices.SortFunc(by, func(a, b grower) int { return cmp.Compare(b.share, a.share) })
	return under / total, by, nil
}

// grower is a function whose calls grew its goroutine's stack, and its share of a profile.
type grower struct {
	fn    string
	share float64
}

// duration reads a pprof duration (10ms, 1.20s) in milliseconds.
func duration(s string) (float64, bool) {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"ms", 1}, {"us", 1e-3}, {"µs", 1e-3}, {"s", 1e3}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f * u.ms, err == nil
		}
	}
	return 0, false
}

// growthCell describes the stack growth in the profile at path: its share, and the largest two
// functions whose calls grew the stack.
func growthCell(path string) string {
	if path == "" {
		return "no profile"
	}
	share, by, err := stackGrowth(path)
	if err != nil {
		return err.Error()
	}
	s := pct(share)
	for k, g := range by[:min(2, len(by))] {
		sep := " ("
		if k > 0 {
			sep = ", "
		}
		s += fmt.Sprintf("%s%s %s", sep, shortFunc(g.fn), pct(g.share))
	}
	if len(by) > 0 {
		s += ")"
	}
	return s
}

// shortFunc drops the module path of a function name: cache.(*Cache).ServeDNS.
func shortFunc(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

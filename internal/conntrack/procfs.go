package conntrack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// defaultMaxPath holds nf_conntrack_max, which is global.
const defaultMaxPath = "/proc/sys/net/netfilter/nf_conntrack_max"

// maxRows bounds the CPU rows ParseProcfs accepts; the kernel supports at most 8192 CPUs.
const maxRows = 8192

type procfs struct {
	path    string // the stat file
	maxPath string // nf_conntrack_max; empty when unknown
}

// NewProcfs returns a Reader of the procfs statistics file path (DefaultProcPath when empty),
// opened anew at each Read. /proc/net/... shows the network namespace of the process (of its main
// thread), /proc/thread-self/net/... that of the reading thread. MaxEntries comes from
// /proc/sys/net/netfilter/nf_conntrack_max when path is a /proc file, and is 0 otherwise.
func NewProcfs(path string) Reader {
	if path == "" {
		path = DefaultProcPath
	}
	p := &procfs{path: path}
	if strings.HasPrefix(path, "/proc/") && strings.HasSuffix(path, "/net/stat/nf_conntrack") {
		p.maxPath = defaultMaxPath
	}
	return p
}

// Read implements the Reader interface.
func (p *procfs) Read() (Stats, error) {
	b, err := os.ReadFile(p.path)
	if err != nil {
		return Stats{}, err // It names the file.
	}
	s, err := ParseProcfs(bytes.NewReader(b))
	if err != nil {
		return Stats{}, fmt.Errorf("%s: %w", p.path, err)
	}
	if p.maxPath != "" {
		if b, err := os.ReadFile(p.maxPath); err == nil {
			s.MaxEntries, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		}
	}
	return s, nil
}

// Close implements the Reader interface. It has nothing to release.
func (p *procfs) Close() error { return nil }

// Source returns "procfs".
func (p *procfs) Source() Source { return SourceProcfs }

// ParseProcfs parses the contents of /proc/net/stat/nf_conntrack: a header line naming the
// columns, then one row of hex counters per possible CPU. Columns are found by name, so the
// layouts of every kernel since the file gained its header parse: "clashres" (5.10+) is
// ClashResolve, "chainlength" (5.15+) is ChainTooLong, "icmp_error" is Error; columns the
// kernel no longer increments (searched, new, ignore, delete, delete_list) and the expectation
// columns are skipped. entries, the namespace's entry count, repeats on every row and is taken
// once. MaxEntries is left 0.
func ParseProcfs(r io.Reader) (Stats, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return Stats{}, err
		}
		return Stats{}, errors.New("empty conntrack statistics")
	}
	header := strings.Fields(sc.Text())
	seen := make(map[string]bool, len(header))
	for _, name := range header {
		if seen[name] {
			return Stats{}, fmt.Errorf("column %q twice in the header", name)
		}
		seen[name] = true
	}
	for _, name := range []string{"entries", "insert_failed", "drop"} {
		if !seen[name] {
			return Stats{}, fmt.Errorf("no %q column in the header %q", name, sc.Text())
		}
	}

	s := Stats{Source: SourceProcfs, HasClashResolve: seen["clashres"], HasChainTooLong: seen["chainlength"]}
	rows := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		rows++
		if rows > maxRows {
			return Stats{}, fmt.Errorf("more than %d CPU rows", maxRows)
		}
		if len(fields) != len(header) {
			return Stats{}, fmt.Errorf("row %d has %d columns, the header %d", rows, len(fields), len(header))
		}
		for i, f := range fields {
			v, err := strconv.ParseUint(f, 16, 64)
			if err != nil {
				return Stats{}, fmt.Errorf("row %d, column %s: %q is not a hex counter", rows, header[i], f)
			}
			switch header[i] {
			case "entries":
				if rows == 1 {
					s.Entries = v
				}
			case "clashres":
				s.ClashResolve += v
			case "found":
				s.Found += v
			case "invalid":
				s.Invalid += v
			case "chainlength":
				s.ChainTooLong += v
			case "insert":
				s.Insert += v
			case "insert_failed":
				s.InsertFailed += v
			case "drop":
				s.Drop += v
			case "early_drop":
				s.EarlyDrop += v
			case "icmp_error":
				s.Error += v
			case "search_restart":
				s.SearchRestart += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Stats{}, err
	}
	if rows == 0 {
		return Stats{}, errors.New("no CPU rows after the header")
	}
	return s, nil
}

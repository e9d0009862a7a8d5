package conntrack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fakeReader returns s, or err when set.
type fakeReader struct {
	s      Stats
	err    error
	closed bool
}

func (f *fakeReader) Read() (Stats, error) { return f.s, f.err }
func (f *fakeReader) Close() error         { f.closed = true; return nil }

// refused is what the netlink query returns without CAP_NET_ADMIN, wrapped as the library does.
var refused = fmt.Errorf("conntrack netlink: %w", fmt.Errorf("netfilter query: netlink receive: %w", syscall.EPERM))

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "nf_conntrack")
	if err := os.WriteFile(good, []byte(lab6), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name       string
		source     string
		procPath   string
		netlink    func() (Reader, error) // nil: not called
		wantSource string                 // Stats.Source of a read; "" for a failing or nil reader
		wantLog    string                 // the one log line, "" for none
		shouldErr  bool
	}{
		// positive
		{name: "off", source: "off"},
		{name: "procfs", source: "procfs", procPath: good, wantSource: "procfs"},
		{name: "netlink works", source: "netlink", procPath: good, wantSource: "netlink",
			netlink: func() (Reader, error) { return &fakeReader{s: Stats{Source: "netlink"}}, nil }},
		{name: "netlink refused", source: "netlink", procPath: good, wantSource: "procfs",
			netlink: func() (Reader, error) { return &fakeReader{err: refused}, nil },
			wantLog: "conntrack statistics: netlink refused (operation not permitted: needs CAP_NET_ADMIN); reading " + good + " instead"},
		{name: "no netlink socket", source: "netlink", procPath: good, wantSource: "procfs",
			netlink: func() (Reader, error) { return nil, errors.New("conntrack netlink socket: protocol not supported") },
			wantLog: "conntrack statistics: netlink unavailable (conntrack netlink socket: protocol not supported); reading " + good + " instead"},
		{name: "netlink refused, no procfs", source: "netlink", procPath: missing,
			netlink: func() (Reader, error) { return &fakeReader{err: refused}, nil },
			wantLog: "conntrack statistics: netlink refused (operation not permitted: needs CAP_NET_ADMIN); " + missing + " unreadable too"},
		{name: "procfs missing", source: "procfs", procPath: missing,
			wantLog: "conntrack statistics: " + missing + " unreadable (open " + missing + ": no such file or directory): no conntrack statistics"},
		// negative
		{name: "bogus", source: "bogus", shouldErr: true},
		{name: "empty", source: "", shouldErr: true},
		{name: "case", source: "Netlink", shouldErr: true},
	}
	defer func(f func() (Reader, error)) { newNetlink = f }(newNetlink)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newNetlink = func() (Reader, error) {
				t.Errorf("Expected no netlink reader for source %q", tc.source)
				return nil, errors.New("not expected")
			}
			if tc.netlink != nil {
				newNetlink = tc.netlink
			}
			var logs []string
			r, err := Open(Source(tc.source), tc.procPath, func(format string, args ...any) {
				logs = append(logs, fmt.Sprintf(format, args...))
			})
			if tc.shouldErr {
				if err == nil || !strings.Contains(err.Error(), "unknown conntrack source") {
					t.Errorf("Expected an unknown source error, got %v", err)
				}
				if r != nil {
					t.Errorf("Expected no reader with the error, got %v", r)
				}
				return
			}
			if err != nil {
				t.Fatalf("Expected no error, got %v", err)
			}
			switch {
			case tc.wantLog == "" && len(logs) != 0:
				t.Errorf("Expected no log, got %q", logs)
			case tc.wantLog != "" && (len(logs) != 1 || !strings.HasPrefix(logs[0], tc.wantLog)):
				t.Errorf("Expected one log line starting %q, got %q", tc.wantLog, logs)
			}
			if tc.source == "off" {
				if r != nil {
					t.Errorf("Expected no reader for off, got %v", r)
				}
				return
			}
			defer r.Close()
			s, err := r.Read()
			if tc.wantSource == "" {
				if err == nil {
					t.Errorf("Expected reads to fail, got %+v", s)
				}
				return
			}
			if err != nil || string(s.Source) != tc.wantSource {
				t.Errorf("Expected a %s read, got %+v, %v", tc.wantSource, s, err)
			}
		})
	}
}

// TestOpenClosesRefusedNetlink: the refused netlink reader is closed, not leaked.
func TestOpenClosesRefusedNetlink(t *testing.T) {
	defer func(f func() (Reader, error)) { newNetlink = f }(newNetlink)
	f := &fakeReader{err: refused}
	newNetlink = func() (Reader, error) { return f, nil }
	r, err := Open("netlink", filepath.Join(t.TempDir(), "missing"), nil) // a nil logf is allowed
	if err != nil {
		t.Fatal(err)
	}
	if !f.closed {
		t.Errorf("Expected the refused netlink reader to be closed")
	}
	if got := configured(r); got != "netlink" {
		t.Errorf("Expected the fallback to report its configured source netlink, got %q", got)
	}
}

// flaky fails from its n-th read on.
type flaky struct {
	fakeReader
	reads, failFrom int
}

func (f *flaky) Read() (Stats, error) {
	f.reads++
	if f.reads >= f.failFrom {
		return Stats{}, f.err
	}
	return f.s, nil
}

func TestOpenRecovers(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "nf_conntrack")
	if err := os.WriteFile(good, []byte(lab6), 0o644); err != nil {
		t.Fatal(err)
	}
	defer func(f func() (Reader, error)) { newNetlink = f }(newNetlink)
	var logs []string
	logf := func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }

	// The socket breaks after two reads; a new one works: no log, still netlink.
	first := &flaky{fakeReader: fakeReader{s: Stats{Source: "netlink", Drop: 1}, err: errors.New("netlink receive: broken pipe")}, failFrom: 3}
	dials := 0
	newNetlink = func() (Reader, error) {
		dials++
		if dials == 1 {
			return first, nil
		}
		return &fakeReader{s: Stats{Source: "netlink", Drop: 2}}, nil
	}
	r, err := Open("netlink", good, logf)
	if err != nil {
		t.Fatal(err)
	}
	r.Read() // the second read of the first socket
	if s, err := r.Read(); err != nil || s.Drop != 2 || !first.closed || len(logs) != 0 {
		t.Errorf("Expected a new socket after the first broke, silently: %+v, %v, closed %v, logs %v", s, err, first.closed, logs)
	}

	// The permission goes: the new socket is refused too. procfs from then on, said once.
	newNetlink = func() (Reader, error) { dials++; return &fakeReader{err: refused}, nil }
	r.(*recovering).nl = &fakeReader{err: refused}
	before := dials
	for range 3 {
		if s, err := r.Read(); err != nil || s.Source != "procfs" {
			t.Errorf("Expected procfs after losing netlink, got %+v, %v", s, err)
		}
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "reading "+good+" instead") {
		t.Errorf("Expected one log line about the fallback, got %q", logs)
	}
	if dials-before != 1 {
		t.Errorf("Expected one new socket tried, then procfs alone, got %d dials", dials-before)
	}
	r.Close()
}

package conntrack

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// Stats are a network namespace's conntrack statistics, summed over CPUs.
type Stats struct {
	Found, Invalid, Insert, InsertFailed, Drop, EarlyDrop, Error, SearchRestart uint64

	ClashResolve, ChainTooLong       uint64
	HasClashResolve, HasChainTooLong bool // whether the kernel reported them (5.10+, 5.15+)

	Entries    uint64 // conntrack entries in this namespace
	MaxEntries uint64 // nf_conntrack_max; 0 when unknown
	Source     Source // SourceNetlink or SourceProcfs
}

// Reader reads Stats. Its methods are safe for concurrent use.
type Reader interface {
	Read() (Stats, error)
	Close() error
}

// Source is where statistics come from, as the Corefile's conntrack option, Open and the up
// metric's source label name it.
type Source string

// Sources a Reader can use.
const (
	SourceNetlink Source = "netlink" // ctnetlink, falling back to procfs
	SourceProcfs  Source = "procfs"
	SourceOff     Source = "off" // no statistics
)

// DefaultProcPath is the procfs statistics file of the reading process's network namespace.
const DefaultProcPath = "/proc/net/stat/nf_conntrack"

// newNetlink is NewNetlink; tests replace it to exercise the fallback.
var newNetlink = NewNetlink

// Open returns a Reader for source: "netlink" (ctnetlink, falling back to procfs), "procfs"
// (procPath only; the default when empty is DefaultProcPath) or "off" (nil, nil). The netlink
// socket is made, and tried once, on the calling thread, so it reads that thread's network
// namespace (the procfs fallback reads procPath's, see NewProcfs). When netlink is unavailable,
// Open calls logf once to say why and what is read instead; when procfs is unreadable too, it
// says so, and the Reader's Read keeps returning the procfs error, as it does for a "procfs"
// source whose file is unreadable (logged once as well). Open never fails for "netlink" or
// "procfs"; logf may be nil.
func Open(source Source, procPath string, logf func(format string, args ...any)) (Reader, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if procPath == "" {
		procPath = DefaultProcPath
	}
	switch source {
	case SourceOff:
		return nil, nil
	case SourceProcfs:
		p := NewProcfs(procPath)
		if _, err := p.Read(); err != nil {
			logf("conntrack statistics: %s unreadable (%v): no conntrack statistics", procPath, err)
		}
		return p, nil
	case SourceNetlink:
	default:
		return nil, fmt.Errorf("unknown conntrack source %q: want %s, %s or %s", source, SourceNetlink, SourceProcfs, SourceOff)
	}

	nl, err := newNetlink()
	if err == nil {
		// A socket is not a permission: the kernel checks CAP_NET_ADMIN per message, so only a
		// query tells.
		if _, err = nl.Read(); err == nil {
			return &recovering{nl: nl, procPath: procPath, logf: logf}, nil
		}
		nl.Close()
	}
	why := "netlink unavailable (" + err.Error() + ")"
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		why = "netlink refused (operation not permitted: needs CAP_NET_ADMIN)"
	}
	p := NewProcfs(procPath)
	if _, perr := p.Read(); perr != nil {
		logf("conntrack statistics: %s; %s unreadable too (%v): no conntrack statistics", why, procPath, perr)
	} else {
		logf("conntrack statistics: %s; reading %s instead", why, procPath)
	}
	return fallback{Reader: p}, nil
}

// recovering is the Reader Open returns when netlink works at first. A read that fails (the
// socket broke, or the process lost CAP_NET_ADMIN) is retried once on a new socket; if that fails
// too, it reads procfs from then on, and says so once. While procfs cannot be read either, each
// read tries netlink again.
type recovering struct {
	mu       sync.Mutex
	nl       Reader // nil once fallen back; protected by mu
	proc     Reader // set on the fallback; protected by mu
	procPath string
	logf     func(format string, args ...any)
}

// Read implements the Reader interface.
func (r *recovering) Read() (Stats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nl == nil && r.proc != nil {
		if s, err := r.proc.Read(); err == nil {
			return s, nil
		}
	}
	var err error
	if r.nl != nil {
		var s Stats
		if s, err = r.nl.Read(); err == nil {
			return s, nil
		}
		r.nl.Close()
		r.nl = nil
	}
	nl, derr := newNetlink()
	if derr == nil {
		s, rerr := nl.Read()
		if rerr == nil {
			r.nl = nl // a new socket: the old one broke, the permission is still there
			return s, nil
		}
		nl.Close()
		derr = rerr
	}
	err = errors.Join(err, derr)
	if r.proc != nil {
		_, perr := r.proc.Read()
		return Stats{}, errors.Join(err, perr)
	}
	r.proc = NewProcfs(r.procPath)
	s, perr := r.proc.Read()
	if perr != nil {
		r.logf("conntrack statistics: netlink failed (%v); %s unreadable too (%v): no conntrack statistics until one works", err, r.procPath, perr)
	} else {
		r.logf("conntrack statistics: netlink failed (%v); reading %s instead", err, r.procPath)
	}
	return s, perr
}

// Close implements the Reader interface.
func (r *recovering) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nl == nil {
		return nil
	}
	err := r.nl.Close()
	r.nl = nil
	return err
}

// Source returns SourceNetlink, the configured source.
func (r *recovering) Source() Source { return SourceNetlink }

// fallback is the procfs Reader Open returns when netlink was asked for but refused. Its Source is
// the configured one, for the up metric of a failed read.
type fallback struct{ Reader }

func (fallback) Source() Source { return SourceNetlink }

// sourcer is implemented by this package's Readers: the configured source, which a failed read
// is reported under.
type sourcer interface{ Source() Source }

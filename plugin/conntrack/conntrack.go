/*
Package conntrack reads the conntrack statistics of the network namespace CoreDNS runs in and
exports them to Prometheus, so a node's DNS server can show whether the kernel is losing packets of
the A+AAAA race (the Kubernetes "5 second DNS lookup").

# Sources

The kernel keeps per-CPU counters for each network namespace and offers them two ways:

  - ctnetlink (IPCTNL_MSG_CT_GET_STATS_CPU and IPCTNL_MSG_CT_GET_STATS). It is the primary source:
    it is always built when conntrack can be queried at all, it is binary (no column layout to
    guess) and it carries every counter, including clash_resolve (attribute 14) and chaintoolong
    (attribute 15), which github.com/ti-mo/conntrack's Stats drops; this package sends the per-CPU
    dump itself with github.com/ti-mo/netfilter for that reason. Every nfnetlink message needs
    CAP_NET_ADMIN in the user namespace owning the network namespace; without it the kernel answers
    EPERM.
  - /proc/net/stat/nf_conntrack, the fallback. The file is world-readable (0444), so it works
    without CAP_NET_ADMIN, but it only exists with CONFIG_NF_CONNTRACK_PROCFS, which newer
    distribution kernels leave out, and its columns changed over time. It is hex, a header and one
    row per possible CPU, and it is parsed by column name so that old and new layouts both work.

Open("netlink", ...) tries ctnetlink once, and if the socket cannot be made or the kernel refuses
the query, logs one line and reads procfs instead.

# Scope

Counters and the entry count are per network namespace: they start at zero with the namespace and
the kernel has one set for each. A ctnetlink socket reports the namespace it was created in, and
/proc/net/stat/nf_conntrack the namespace of the process reading it (/proc/thread-self/net/... for
a thread that joined another one). CoreDNS in a pod sees the pod's namespace, not the node's, so
the numbers only describe the node's DNAT when CoreDNS runs with hostNetwork or as a node-local
cache. nf_conntrack_max (MaxEntries) is global.

# Meaning across kernels

insert_failed counts entries that could not be inserted at confirm time. Since Linux 5.10 a clash
the kernel resolved (UDP, where the loser of a race is attached to the winner's entry or gets a
NAT-clash reply tuple) increments clash_resolve instead; before 5.10 resolved clashes incremented
insert_failed too, so on old kernels insert_failed alone does not prove a lost packet and drop
does. clash_resolve is reported from 5.10 and chaintoolong from 5.15; Stats says whether the
kernel sent them.
*/
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
	Source     string // "netlink" or "procfs"
}

// Reader reads Stats. Its methods are safe for concurrent use.
type Reader interface {
	Read() (Stats, error)
	Close() error
}

// Sources a Reader can use, as Open and the up metric's source label name them.
const (
	SourceNetlink = "netlink"
	SourceProcfs  = "procfs"
	SourceOff     = "off"
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
func Open(source, procPath string, logf func(format string, args ...any)) (Reader, error) {
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

// Source returns "netlink", the configured source.
func (r *recovering) Source() string { return SourceNetlink }

// fallback is the procfs Reader Open returns when netlink was asked for but refused. Its Source is
// the configured one, for the up metric of a failed read.
type fallback struct{ Reader }

func (fallback) Source() string { return SourceNetlink }

// sourcer is implemented by this package's Readers: the configured source, which a failed read
// is reported under.
type sourcer interface{ Source() string }

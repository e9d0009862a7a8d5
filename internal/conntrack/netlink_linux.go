package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
)

// ipctnlMsgCtGetStatsCPU is IPCTNL_MSG_CT_GET_STATS_CPU (enum cntl_msg_types): the per-CPU dump.
const ipctnlMsgCtGetStatsCPU netfilter.MessageType = 4

// The attributes of one CPU's message (enum ctattr_stats_cpu, include/uapi/linux/netfilter/
// nfnetlink_conntrack.h). 1 searched, 3 new, 6 delete and 7 delete_list are no longer sent; 5
// ignore is not sent by 6.x kernels and is always 0 where it is.
const (
	ctaStatsFound         = 2
	ctaStatsInvalid       = 4
	ctaStatsInsert        = 8
	ctaStatsInsertFailed  = 9
	ctaStatsDrop          = 10
	ctaStatsEarlyDrop     = 11
	ctaStatsError         = 12
	ctaStatsSearchRestart = 13
	ctaStatsClashResolve  = 14 // Linux 5.10+
	ctaStatsChainTooLong  = 15 // Linux 5.15+
)

// queryTimeout bounds a netlink query. The kernel answers conntrack statistics synchronously;
// this only guards a scrape against the unexpected.
const queryTimeout = 2 * time.Second

type netlinkReader struct {
	mu sync.Mutex
	ct *conntrack.Conn // StatsGlobal; nil once closed; protected by mu
	nf *netfilter.Conn // the per-CPU dump; protected by mu
}

// NewNetlink returns a Reader that queries ctnetlink. Its sockets are made on the calling thread
// and so read that thread's network namespace for their whole life. Reading needs CAP_NET_ADMIN.
func NewNetlink() (Reader, error) {
	ct, err := conntrack.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("conntrack netlink socket: %w", err)
	}
	nf, err := netfilter.Dial(nil)
	if err != nil {
		ct.Close()
		return nil, fmt.Errorf("conntrack netlink socket: %w", err)
	}
	return &netlinkReader{ct: ct, nf: nf}, nil
}

// Read implements the Reader interface.
func (n *netlinkReader) Read() (Stats, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ct == nil {
		return Stats{}, errors.New("conntrack netlink reader closed")
	}

	req, err := netfilter.MarshalNetlink(netfilter.Header{
		SubsystemID: netfilter.NFSubsysCTNetlink,
		MessageType: ipctnlMsgCtGetStatsCPU,
		Family:      netfilter.ProtoUnspec,
		Flags:       netlink.Request | netlink.Dump,
	}, nil)
	if err != nil {
		return Stats{}, fmt.Errorf("conntrack netlink: %w", err)
	}
	if err := n.nf.SetDeadline(time.Now().Add(queryTimeout)); err != nil {
		return Stats{}, fmt.Errorf("conntrack netlink: %w", err)
	}
	msgs, err := n.nf.Query(req)
	if err != nil {
		return Stats{}, fmt.Errorf("conntrack netlink: %w", err)
	}
	s, err := statsFromMessages(msgs)
	if err != nil {
		return Stats{}, fmt.Errorf("conntrack netlink: %w", err)
	}

	g, err := statsGlobal(n.ct)
	if err != nil {
		return Stats{}, fmt.Errorf("conntrack netlink: %w", err)
	}
	s.Entries, s.MaxEntries = uint64(g.Entries), uint64(g.MaxEntries)
	return s, nil
}

// statsGlobal is c.StatsGlobal, which indexes the kernel's first reply without checking there is
// one: a reply we did not expect must fail a scrape, not crash the server.
func statsGlobal(c *conntrack.Conn) (g conntrack.StatsGlobal, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("global statistics: unexpected reply (%v)", r)
		}
	}()
	return c.StatsGlobal()
}

// Close implements the Reader interface.
func (n *netlinkReader) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ct == nil {
		return nil
	}
	err := errors.Join(n.ct.Close(), n.nf.Close())
	n.ct, n.nf = nil, nil
	return err
}

// Source returns "netlink".
func (n *netlinkReader) Source() Source { return SourceNetlink }

// statsFromMessages sums the per-CPU messages of an IPCTNL_MSG_CT_GET_STATS_CPU dump.
func statsFromMessages(msgs []netlink.Message) (Stats, error) {
	s := Stats{Source: SourceNetlink}
	cpus := 0
	for _, m := range msgs {
		h, attrs, err := netfilter.UnmarshalNetlink(m)
		if err != nil {
			return Stats{}, err
		}
		if h.SubsystemID != netfilter.NFSubsysCTNetlink {
			continue
		}
		if err := s.addCPU(attrs); err != nil {
			return Stats{}, fmt.Errorf("cpu %d: %w", h.ResourceID, err)
		}
		cpus++
	}
	if cpus == 0 {
		return Stats{}, errors.New("no per-CPU statistics in the reply")
	}
	return s, nil
}

// addCPU adds one CPU's counters, the attributes of its IPCTNL_MSG_CT_GET_STATS_CPU message, to
// s. It sets HasClashResolve and HasChainTooLong when those attributes are present. Attributes it
// does not know (deprecated ones, or ones newer than this code) are skipped; a known one that is
// not a 32-bit counter is an error.
func (s *Stats) addCPU(attrs []netfilter.Attribute) error {
	for _, a := range attrs {
		var p *uint64
		switch a.Type {
		case ctaStatsFound:
			p = &s.Found
		case ctaStatsInvalid:
			p = &s.Invalid
		case ctaStatsInsert:
			p = &s.Insert
		case ctaStatsInsertFailed:
			p = &s.InsertFailed
		case ctaStatsDrop:
			p = &s.Drop
		case ctaStatsEarlyDrop:
			p = &s.EarlyDrop
		case ctaStatsError:
			p = &s.Error
		case ctaStatsSearchRestart:
			p = &s.SearchRestart
		case ctaStatsClashResolve:
			p, s.HasClashResolve = &s.ClashResolve, true
		case ctaStatsChainTooLong:
			p, s.HasChainTooLong = &s.ChainTooLong, true
		default:
			continue
		}
		// netfilter.Attribute.Uint32 panics on any other length; the kernel sends __be32.
		if a.Nested || len(a.Data) != 4 {
			return fmt.Errorf("attribute %d: want a 4-byte counter, got %d bytes", a.Type, len(a.Data))
		}
		*p += uint64(binary.BigEndian.Uint32(a.Data))
	}
	return nil
}

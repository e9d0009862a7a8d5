package podlist

import (
	"net/netip"
	"slices"
	"sync"
)

// shards splits the index so that lookups from many cores do not meet on one lock.
const shards = 64

// index maps addresses to the pods that hold them. Lookups read it under a shard's read lock;
// the store changes it under the shard's lock, one address at a time, and never lets an
// address answer for a pod that no longer holds it: a pod leaves an address before another's
// arrival is weighed, and two holders answer Shared.
type index struct {
	shards [shards]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[[16]byte]holders // by address (IPv4 as IPv4-mapped IPv6); protected by mu
}

// holders are the pods holding one address, and the answer they make, kept in the map by value
// (an address almost always has one holder). The answer is set whenever the holders or their
// lists change; the pods are read and written by the store only.
type holders struct {
	first *pod
	more  *[]*pod // the others, rarely any
	list  *List
	state State
}

func newIndex() *index {
	ix := &index{}
	for i := range ix.shards {
		ix.shards[i].m = make(map[[16]byte]holders)
	}
	return ix
}

func (ix *index) shard(b [16]byte) *shard {
	return &ix.shards[(uint(b[15])+31*uint(b[14])+17*uint(b[7]))%shards]
}

// get returns the answer for a.
func (ix *index) get(addr netip.Addr) (*List, State) {
	a := addr.As16()
	s := ix.shard(a)
	s.mu.RLock()
	h, ok := s.m[a]
	s.mu.RUnlock()
	if !ok {
		return nil, NoPod
	}
	return h.list, h.state
}

// add makes p a holder of a.
func (ix *index) add(a [16]byte, p *pod) {
	s := ix.shard(a)
	s.mu.Lock()
	h := s.m[a]
	switch {
	case h.first == nil:
		h.first = p
	case h.more == nil:
		h.more = &[]*pod{p}
	default:
		*h.more = append(*h.more, p)
	}
	s.m[a] = h.settled()
	s.mu.Unlock()
}

// remove makes p no holder of a.
func (ix *index) remove(a [16]byte, p *pod) {
	s := ix.shard(a)
	s.mu.Lock()
	if h, ok := s.m[a]; ok {
		var more []*pod
		if h.more != nil {
			more = *h.more
		}
		if h.first == p {
			h.first = nil
			if len(more) > 0 {
				h.first, more = more[0], more[1:]
			}
		} else {
			more = slices.DeleteFunc(more, func(q *pod) bool { return q == p })
		}
		h.more = nil
		if len(more) > 0 {
			h.more = &more
		}
		if h.first == nil {
			delete(s.m, a)
		} else {
			s.m[a] = h.settled()
		}
	}
	s.mu.Unlock()
}

// refresh sets the answer for a again, after a holder's list changed.
func (ix *index) refresh(a [16]byte) {
	s := ix.shard(a)
	s.mu.Lock()
	if h, ok := s.m[a]; ok {
		s.m[a] = h.settled()
	}
	s.mu.Unlock()
}

// settled returns h with its answer: the one pod's own, or Shared when the address is a
// host-network pod's (the node's) or more than one pod's.
func (h holders) settled() holders {
	if h.more != nil || h.first.hostNetwork {
		h.list, h.state = nil, Shared
	} else {
		h.list, h.state = h.first.list, h.first.state
	}
	return h
}

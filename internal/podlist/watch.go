package podlist

import (
	"context"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// The reasons a Source answers Unknown; its health is the set of those that hold.
const (
	unsynced    uint32 = 1 << iota // no list has been stored yet
	lost                           // a list or watch failed, or the server ended a watch with an error
	between                        // a watch ended and the next has not started
	overflowed                     // the API server has more pods than the table holds
	stopped                        // Stop was called
	unavailable                    // no credentials to watch with (New's caveat): it never will
)

// list lists the pods the Source watches. A failure is a lost watch.
func (s *Source) list(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	opts.FieldSelector = s.selector
	l, err := s.api.List(ctx, opts)
	if err != nil && ctx.Err() == nil {
		s.raise(lost, err)
	}
	return l, err
}

// watch watches the pods the Source watches from where the last list or watch ended. A failure
// is a lost watch; a watch that starts ends one, unless the server ended the last with an error
// (then only a new list does). A watch that streams the initial list (client-go's watch-list)
// changes nothing until that list is stored: where the server cannot, client-go lists instead.
func (s *Source) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.FieldSelector = s.selector
	initial := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	w, err := s.api.Watch(ctx, opts)
	if err != nil {
		if !initial && ctx.Err() == nil {
			s.raise(lost, err)
		}
		return nil, err
	}
	if !initial {
		s.watching()
	}
	o := &observed{w: w, out: make(chan watch.Event), stop: make(chan struct{})}
	s.wg.Add(1)
	go s.observe(o)
	return o, nil
}

// observed passes a watch's events on, noting how it ends.
type observed struct {
	w    watch.Interface
	out  chan watch.Event
	stop chan struct{}
	once sync.Once
}

func (o *observed) ResultChan() <-chan watch.Event { return o.out }

func (o *observed) Stop() {
	o.once.Do(func() {
		close(o.stop)
		o.w.Stop()
	})
}

func (s *Source) observe(o *observed) {
	defer s.wg.Done()
	defer close(o.out)
	for {
		select {
		case <-o.stop:
			return
		case ev, ok := <-o.w.ResultChan():
			if !ok {
				s.raise(between, nil)
				return
			}
			if ev.Type == watch.Error {
				// An expired resource version or a server error: events may be missing
				// until client-go has listed again.
				s.stateMu.Lock()
				s.needList = true
				s.stateMu.Unlock()
				s.raise(lost, apierrors.FromObject(ev.Object))
			}
			select {
			case o.out <- ev:
			case <-o.stop:
				return
			}
		}
	}
}

// raise adds flag to the Source's health, logging and counting a loss once.
func (s *Source) raise(flag uint32, err error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	old := s.health.Load()
	if old&flag != 0 {
		return
	}
	s.health.Store(old | flag)
	switch flag {
	case lost:
		lossCount.Inc()
		if old&unsynced != 0 {
			log.Warningf("Cannot list pods: %v; search lists come from the namespace hierarchy until it can", err)
		} else {
			log.Warningf("Pod watch lost: %v; search lists come from the namespace hierarchy until it recovers", err)
		}
	case overflowed:
		log.Warningf("Pod table full (%v): search lists come from the namespace hierarchy until pods fit", err)
	}
}

// lower removes flags from the Source's health, logging the end of a loss or an overflow.
func (s *Source) lower(flags uint32) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.lowerLocked(flags)
}

func (s *Source) lowerLocked(flags uint32) {
	old := s.health.Load()
	s.health.Store(old &^ flags)
	if old&flags&lost != 0 && old&unsynced == 0 {
		log.Infof("Pod watch recovered")
	}
	if old&flags&overflowed != 0 {
		log.Infof("Pod table fits again: %d pods", s.live.Load())
	}
}

// watching ends a gap between watches, and a loss that a watch resuming where the last ended
// makes good.
func (s *Source) watching() {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	flags := between
	if !s.needList {
		flags |= lost
	}
	s.lowerLocked(flags)
}

// synced ends everything a fresh list makes good.
func (s *Source) synced(n int) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.health.Load()&unsynced != 0 {
		log.Infof("Pod watch synced: %d pods", n)
	}
	s.needList = false
	s.lowerLocked(unsynced | lost | between)
}

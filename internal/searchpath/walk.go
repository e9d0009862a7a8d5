package searchpath

import (
	"context"
	"sync"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/module"
	"github.com/raceguard/raceguard/internal/query"
)

// outcome is how a walk ended.
type outcome int

const (
	outcomeAnswered  outcome = iota // completed: a later name answers for the first
	outcomeAsAsked                  // the first name itself is not NXDOMAIN: answered as asked
	outcomePassed                   // a later name is neither NXDOMAIN nor cleanly answered: the client walks
	outcomeExhausted                // every name is NXDOMAIN
)

func (o outcome) String() string {
	return [...]string{"answered", "as_asked", "passed_through", "exhausted"}[o]
}

// class is what a client's resolver makes of one reply.
type class int

const (
	classNX     class = iota // NXDOMAIN: every resolver tries the next name
	classAnswer              // NOERROR with records
	classNoData              // NOERROR without records
	classFail                // an error, a truncated reply, or none written
)

// answer is what the chain gave for one name and type.
type answer struct {
	msg   *dns.Msg // nil when the chain wrote nothing
	rcode int
	err   error
}

func (a answer) class() class {
	switch {
	case a.err != nil || a.msg == nil || a.msg.Truncated:
		return classFail
	case a.msg.Rcode == dns.RcodeNameError:
		return classNX
	case a.msg.Rcode != dns.RcodeSuccess:
		return classFail
	case len(a.msg.Answer) > 0:
		return classAnswer
	}
	return classNoData
}

// result is a finished walk.
type result struct {
	outcome outcome
	names   []string
	k       int       // the name that answers, for outcomeAnswered; where the walk stopped otherwise
	answer  [2]answer // A and AAAA: the k-th name's when answered, the first name's otherwise
	tried   [][2]answer
}

// walk tries the names of walk in order, as a pair, and decides.
func (wk *Walker) walk(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, walk Walk) *result {
	ctx, cancel := context.WithCancel(query.MarkOwn(ctx)) // a walk resolves both types itself: no prefetch
	defer cancel()                                        // stops the speculative tries no longer needed

	n := len(walk.Names)
	res := &result{names: walk.Names, tried: make([][2]answer, 0, n)}
	futures := make([]chan [2]answer, n)
	start := func(i int) {
		if futures[i] != nil {
			return
		}
		ch := make(chan [2]answer, 1)
		futures[i] = ch
		go func() { ch <- wk.resolvePair(ctx, w, r, walk.Names[i]) }()
	}

	// An inferred namespace is checked beside the first name, at no extra latency.
	var verify chan answer
	if walk.Verify != "" {
		verify = make(chan answer, 1)
		go func() { verify <- wk.resolve(ctx, w, r, walk.Verify, dns.TypeA) }()
	}

	for i := range n {
		start(i)
		if wk.Parallel && i >= walk.Local-1 {
			for j := i + 1; j < n; j++ {
				start(j)
			}
		}
		p := <-futures[i]
		res.tried = append(res.tried, p)
		a, b := p[0].class(), p[1].class()
		if i == 0 && verify != nil && (a == classNX && b == classNX) {
			if v := <-verify; v.class() == classNX || v.class() == classFail {
				// No such namespace: not a first try, but maybe another walk's later one.
				res.outcome, res.k, res.answer = outcomeAsAsked, 0, p
				return res
			}
		}
		switch {
		case i == 0 && (a != classNX || b != classNX):
			res.outcome, res.k, res.answer = outcomeAsAsked, 0, p
			return res
		case a == classNX && b == classNX:
			continue
		case (a == classAnswer || a == classNoData) && (b == classAnswer || b == classNoData):
			res.outcome, res.k, res.answer = outcomeAnswered, i, p
			return res
		default:
			res.outcome, res.k, res.answer = outcomePassed, i, res.tried[0]
			return res
		}
	}
	res.outcome, res.k, res.answer = outcomeExhausted, n-1, res.tried[0]
	return res
}

// resolvePair resolves name's A and AAAA down the chain at the same time.
func (wk *Walker) resolvePair(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string) [2]answer {
	var p [2]answer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p[1] = wk.resolve(ctx, w, r, name, dns.TypeAAAA)
	}()
	p[0] = wk.resolve(ctx, w, r, name, dns.TypeA)
	wg.Wait()
	return p
}

// minWalkSize is the least EDNS buffer a walk's queries advertise. A client without EDNS must
// not make the walk fail on a reply that only its own 512 bytes truncate: the walk gets the whole
// answer, and the client's reply is cut to its size (and flagged TC) by the server's ScrubWriter,
// so the client retries over TCP as it would have.
const minWalkSize = 1232

// resolve sends a copy of r for name and qtype down the chain and captures the reply.
func (wk *Walker) resolve(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string, qtype uint16) answer {
	q := r.Copy()
	q.Question[0].Name = name
	q.Question[0].Qtype = qtype
	if o := q.IsEdns0(); o == nil {
		q.SetEdns0(minWalkSize, false)
	} else if o.UDPSize() < minWalkSize {
		o.SetUDPSize(minWalkSize)
	}
	nw := nonwriter.New(w)
	rcode, err := plugin.NextOrFailure(module.Name, wk.Next, ctx, nw, q)
	return answer{msg: nw.Msg, rcode: rcode, err: err}
}

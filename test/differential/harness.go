package differential

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// variant is a raceguard Corefile the differential runs, how many leading names of a walk it
// trusts, and the one namespace whose first tries it walks ("" for any).
type variant struct {
	name      string
	corefile  string
	trusted   int
	namespace string
}

// harness is the state of one differential run.
type harness struct {
	t         *testing.T
	stock, rg *server
	bounds    *zoneBounds
	trusted   int    // how many leading names of a walk the raceguard Corefile trusts (see plan)
	namespace string // the only namespace whose first tries are walks (a fixed list's); "" for any

	mu   sync.Mutex
	cand map[candKey]*dns.Msg // stock's replies for the names of walks

	compared, identical, failures          int
	completedRecords, completedNoData      int
	truncChecks, burstQueries, candQueries int
	skipped                                int // tries of lookups whose client had stopped
}

// newHarness returns a harness comparing the servers stock and rg, whose replies must keep
// within the zone data of b, and whose walks are those of the variant v.
func newHarness(t *testing.T, stock, rg *server, b *zoneBounds, v variant) *harness {
	return &harness{t: t, stock: stock, rg: rg, bounds: b, trusted: v.trusted, namespace: v.namespace, cand: map[candKey]*dns.Msg{}}
}

// run sends the queries of corpus in order. The queries of a lookup are a client walking its
// search list: it goes on to its next name only while the replies it got (raceguard's: it is the
// client's server) have no records, as glibc does (for the A and AAAA pair: while neither has).
func (d *harness) run(corpus []query) {
	stopped := map[int]int{} // group -> the step at which its client got records
	for _, q := range corpus {
		if s, ok := stopped[q.group]; q.group > 0 && ok && q.step > s {
			d.skipped++
			continue
		}
		r := d.compare(q)
		if _, ok := stopped[q.group]; q.group > 0 && !ok && r != nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			stopped[q.group] = q.step
		}
	}
}

// compare sends q to both servers and judges the replies.
func (d *harness) compare(q query) *dns.Msg {
	qwire, s, r, err := d.exchange(q)
	if err != nil {
		d.mu.Lock()
		d.compared++
		d.mu.Unlock()
		d.fail(q, s, r, []string{err.Error()})
		return nil
	}
	d.judge(q, qwire, s, r)
	return r.msg
}

// exchange sends q's wire message to both servers, stock first, and returns both replies.
func (d *harness) exchange(q query) (qwire []byte, s, r *reply, err error) {
	qwire, err = q.msg().Pack()
	if err != nil {
		return nil, nil, nil, err
	}
	if s, err = exchange(q.net, d.stock.addr, qwire); err != nil {
		return nil, nil, nil, fmt.Errorf("stock: %w", err)
	}
	if r, err = exchange(q.net, d.rg.addr, qwire); err != nil {
		return nil, nil, nil, fmt.Errorf("raceguard: %w", err)
	}
	return qwire, s, r, nil
}

// fail records a real difference, with the query and both replies.
func (d *harness) fail(q query, s, r *reply, problems []string) {
	d.mu.Lock()
	d.failures++
	n := d.failures
	d.mu.Unlock()
	if n > 25 {
		if n == 26 {
			d.t.Errorf("more differences follow; only the count is reported")
		}
		return
	}
	d.t.Errorf("difference for %v:\n  - %s\nstock %s\nraceguard %s", q, strings.Join(problems, "\n  - "), s, r)
}

// summary logs the counts of d and checks each query was counted once.
func (d *harness) summary(parts string, start time.Time) {
	d.t.Logf("differential: %d queries compared (%s) in %v: %d identical, %d documented search completions verified against stock (%d CNAME+records, %d NODATA), %d differences; %d later tries not sent (their client had its answer); %d extra stock queries for the walks",
		d.compared, parts, time.Since(start).Round(time.Millisecond),
		d.identical, d.completedRecords+d.completedNoData, d.completedRecords, d.completedNoData, d.failures, d.skipped, d.candQueries)
	if d.compared != d.identical+d.completedRecords+d.completedNoData+d.failures {
		d.t.Errorf("Expected every query counted once, got %d compared, %d identical, %d completed, %d differences",
			d.compared, d.identical, d.completedRecords+d.completedNoData, d.failures)
	}
}

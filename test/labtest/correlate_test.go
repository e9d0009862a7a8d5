package labtest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestCorrelationLab: on a node-local raceguard, real conntrack drops (a TCP SYN race in the
// node's conntrack) at the moments clients lose a query (the emulated pair drop, musl: late
// sibling 2.5 s later) make the drop/late-sibling correlation at the 2.5 s lag rise; late siblings
// without drops, and drops without late siblings, leave it near zero.
func TestCorrelationLab(t *testing.T) {
	l := testenv.NewLab(t)
	const options = "interval 500ms\n        window 60s"
	corr := func() float64 {
		return scrapeNode(t, l).Sum("coredns_raceguard_conntrack_correlation",
			map[string]string{"conntrack": "drop", "dns": "late_siblings", "lag": "2.5s"})
	}
	rc := lab.DefaultResolvConf()
	// cycle loses one query in each of 3 musl lookups and, if drops, races 150 SYN pairs at once.
	cycle := func(round, i int, drops, losses bool) {
		var wg sync.WaitGroup
		if losses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var names []string
				for j := range 3 {
					names = append(names, fmt.Sprintf("c%dr%dn%d.wild.example.com", round, i, j))
				}
				if _, err := l.Lookup(lab.Musl, lab.Unspec, rc, 3, names...); err != nil {
					t.Error(err)
				}
			}()
		}
		if drops {
			if err := lab.SYNRace(l.Client, lab.ClusterIP+":53", 150); err != nil {
				t.Error(err)
			}
		}
		time.Sleep(3 * time.Second)
		wg.Wait()
	}
	// start starts the node-local server, which knows the client's list from its pod watch, so
	// each lookup costs one pair, and turns the fault on.
	start := func() *lab.Process {
		if err := l.SetFault(lab.FaultOff, 0); err != nil {
			t.Fatal(err)
		}
		p := startNodeDNS(t, l, options)
		if err := l.SetFault(lab.FaultSecond, 100); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Together.
	p := start()
	for i := range 5 {
		cycle(1, i, true, true)
	}
	time.Sleep(time.Second)
	m := scrapeNode(t, l)
	together := corr()
	coincident := m.Sum("coredns_raceguard_late_siblings_with_conntrack_drops_total", nil)
	t.Logf("drops with late siblings: correlation %.2f at 2.5s, %v late siblings coincide with drops", together, coincident)
	if together < 0.5 {
		t.Errorf("Expected drops and late siblings 2.5 s later to correlate, got %.2f", together)
	}
	if coincident < 10 {
		t.Errorf("Expected the late siblings counted as coinciding with drops, got %v", coincident)
	}
	if lp := p.Log(); !strings.Contains(lp, "moves with DNS late siblings") {
		t.Errorf("Expected the diagnosis in the log:\n%s", lp)
	}
	p.Stop()

	// Apart: late siblings without drops, then drops without late siblings.
	p = start()
	for i := range 3 {
		cycle(2, i, false, true)
	}
	for i := range 2 {
		cycle(3, i, true, false)
	}
	apart := corr()
	t.Logf("drops and late siblings apart: correlation %.2f at 2.5s", apart)
	if apart > 0.3 || apart < -0.3 {
		t.Errorf("Expected near-zero correlation when drops and late siblings do not move together, got %.2f", apart)
	}
	p.Stop()
}

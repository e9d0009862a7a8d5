package differential

import (
	"fmt"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// perName looks each name of names up, one name at a time, with glibc and musl in every family as
// a ClusterFirst pod, and returns the UDP queries the clients sent for each (counted on the wire,
// in the node) and in all.
func perName(t *testing.T, l *lab.Lab, names []string) (map[string]int, int) {
	t.Helper()
	out, total := map[string]int{}, 0
	for _, name := range names {
		_, n := LookupWith(t, l, lab.DefaultResolvConf(), []string{name})
		out[name], total = n, total+n
	}
	return out, total
}

// TestSearchCoverage counts, name by name, the queries the clients send for the zoo, counted on
// the wire: without raceguard, with a raceguard Deployment (the namespace's hierarchy only; and
// with the pods' exact lists) and with a node-local raceguard that knows the pod's list. It logs
// the table; TestSearchDifferential holds the answers to stock's and the totals to their targets.
func TestSearchCoverage(t *testing.T) {
	l := testenv.NewLab(t)
	startDeployment(t, l, lab.StockCorefile)
	stock, stockN := perName(t, l, zoo)
	startDeployment(t, l, lab.RaceguardCorefile)
	infer, inferN := perName(t, l, zoo)
	startDeploymentFor(t, l, lab.RaceguardCorefile, lab.DefaultResolvConf())
	pods, podsN := perName(t, l, zoo)
	startNodeLocalFor(t, l, withNodeLocal(lab.RaceguardCorefile), lab.DefaultResolvConf())
	local, localN := perName(t, l, zoo)

	var table strings.Builder
	table.WriteString("| name | stock | Deployment, infer | Deployment, search pods | node-local, search pods |\n|---|---|---|---|---|\n")
	for _, name := range zoo {
		fmt.Fprintf(&table, "| %s | %d | %d | %d | %d |\n", name, stock[name], infer[name], pods[name], local[name])
	}
	pct := func(n int) int { return 100 * n / stockN }
	fmt.Fprintf(&table, "| **all %d names** | %d | %d (%d %%) | %d (%d %%) | %d (%d %%) |\n", len(zoo), stockN, inferN, pct(inferN), podsN, pct(podsN), localN, pct(localN))
	for _, missing := range []bool{false, true} {
		sum := func(m map[string]int) int {
			n := 0
			for name, v := range m {
				if absent[name] == missing {
					n += v
				}
			}
			return n
		}
		what, s := "that exist", sum(stock)
		if missing {
			what = "that exist nowhere"
		}
		fmt.Fprintf(&table, "| the names %s | %d | %d (%d %%) | %d (%d %%) | %d (%d %%) |\n", what, s,
			sum(infer), 100*sum(infer)/s, sum(pods), 100*sum(pods)/s, sum(local), 100*sum(local)/s)
	}
	t.Logf("Client queries per name, glibc and musl for AF_UNSPEC, AF_INET and AF_INET6 each, counted on the wire:\n%s", table.String())
	for _, name := range zoo {
		if infer[name] > stock[name] || pods[name] > stock[name] || local[name] > stock[name] {
			t.Errorf("%s: Expected no more queries with raceguard than stock's %d, got %d, %d, %d", name, stock[name], infer[name], pods[name], local[name])
		}
	}
}

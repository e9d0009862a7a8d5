package differential

import (
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestSearchDifferential is the correctness contract of search completion: for every name of the
// zoo, real glibc and musl clients, asking for AF_UNSPEC, AF_INET and AF_INET6, end with the same
// addresses or the same error with raceguard as with stock CoreDNS without autopath. Two DNS
// servers sit behind the DNAT, so a client's later tries can reach a server that did not see its
// first one.
func TestSearchDifferential(t *testing.T) {
	l := testenv.NewLab(t)

	testenv.StartDNS(t, l, lab.StockCorefile)
	stock, stockQueries := LookupAll(t, l, zoo)
	testenv.StartDNS(t, l, lab.RaceguardCorefile)
	rg, rgQueries := LookupAll(t, l, zoo)

	if len(stock) != 6*len(zoo) {
		t.Fatalf("Expected %d outcomes, got %d", 6*len(zoo), len(stock))
	}
	for _, d := range DiffLookups(stock, rg) {
		t.Error(d)
	}
	t.Logf("Queries sent for the whole zoo: %d without raceguard, %d with", stockQueries, rgQueries)
	if rgQueries >= stockQueries*3/4 {
		t.Errorf("Expected far fewer queries with raceguard, got %d against %d", rgQueries, stockQueries)
	}
	// The zoo is only a test if the names behave differently from each other.
	kinds := map[string]bool{}
	for _, v := range stock {
		kinds[strings.SplitN(v, ",", 2)[0]] = true
	}
	for _, want := range []string{"EAI_NONAME", "EAI_NODATA", "EAI_AGAIN"} {
		if !kinds[want] {
			t.Errorf("Expected the zoo to produce %s somewhere, got %v", want, kinds)
		}
	}
}

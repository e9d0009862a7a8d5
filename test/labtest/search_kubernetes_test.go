package labtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/differential"
	"github.com/raceguard/raceguard/test/kubeapi"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// kubeCorefile is a kube-dns CoreDNS on the real kubernetes plugin (pods verified, as stock
// autopath needs) fed by the lab's fake API; SEARCH is replaced by the search completion to test.
const kubeCorefile = `.:{{.Port}} {
    errors
    prometheus {{.Metrics}}
    SEARCH
    kubernetes cluster.local {
        kubeconfig {{.Kubeconfig}}
        pods verified
    }
    cache 30
    forward . {{.Upstream}}
}
`

// kubeZoo is the part of the zoo a kubernetes-backed cluster answers differently from a file
// zone, plus the external names whose walks cross it.
var kubeZoo = []string{
	"web", "kubernetes.default", "api.shop", "API.Shop", "kube-dns.kube-system", "db.shop", "db-0.db.shop",
	"db-9.db.shop", "legacy", "v6only", "docs", "shop", "nosuch", "nosuch.shop", "example.org",
	"www.example.org", "v6only.example.net", "nosuch.example.org", "example.org.", "gateway", "registry",
	"gateway.shop", "registry.default", "web.default.svc.cluster.local",
}

// TestSearchKubernetesLab compares, with real glibc and musl clients, stock autopath @kubernetes
// and raceguard (search @kubernetes, and search infer) against the same CoreDNS without search
// completion, on the real kubernetes plugin.
func TestSearchKubernetesLab(t *testing.T) {
	l := testenv.NewLab(t)
	pod := kubeapi.Pod{Namespace: "default", Name: "client", IP: lab.ClientIPv4}
	if err := l.StartKubeAPI(kubeapi.Sample(pod)); err != nil {
		t.Fatal(err)
	}
	run := func(search string) (map[differential.LookupKey]string, int) {
		testenv.StartDNS(t, l, strings.Replace(kubeCorefile, "SEARCH", search, 1))
		return differential.LookupAll(t, l, kubeZoo)
	}
	base, baseQ := run("")
	autopath, autopathQ := run("autopath @kubernetes")
	rgKube, rgKubeQ := run("raceguard {\n        search @kubernetes\n    }")
	rgInfer, rgInferQ := run("raceguard")
	t.Logf("Queries for the zoo: %d without completion, %d stock autopath, %d raceguard @kubernetes, %d raceguard infer",
		baseQ, autopathQ, rgKubeQ, rgInferQ)

	for _, d := range differential.DiffLookups(base, rgKube) {
		t.Errorf("raceguard @kubernetes: %s", d)
	}
	for _, d := range differential.DiffLookups(base, rgInfer) {
		t.Errorf("raceguard infer: %s", d)
	}
	// Two servers behind the DNAT, as a cluster Deployment: completions stay in the namespace's
	// own hierarchy (api.shop, db.shop), where both lists are known to be right.
	if rgKubeQ >= baseQ || rgInferQ >= baseQ {
		t.Errorf("Expected raceguard to save queries, got %d and %d against %d", rgKubeQ, rgInferQ, baseQ)
	}

	// Stock autopath takes "registry.default" (no service registry in namespace default) for the
	// first try of "registry" from a pod in default, completes it to the node domain's
	// registry.lab.internal, and hands every client an address where its own resolver, and
	// raceguard, end with EAI_NONAME.
	d := differential.DiffLookups(base, autopath)
	for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
		for _, fam := range []lab.Family{lab.Unspec, lab.Inet, lab.Inet6} {
			k := differential.LookupKey{Libc: libc, Family: fam, Name: "registry.default"}
			if base[k] != "EAI_NONAME" || !strings.HasPrefix(autopath[k], "10.32.0.60") && !strings.HasPrefix(autopath[k], "fd00:32::60") {
				t.Errorf("Expected stock autopath to answer %v with registry.lab.internal where the client gets EAI_NONAME; got %q, stock %q", k, autopath[k], base[k])
			}
		}
	}
	if slices.ContainsFunc(d, func(s string) bool { return !strings.Contains(s, `"registry.default"`) }) {
		t.Logf("Stock autopath differs elsewhere too:\n%s", strings.Join(d, "\n"))
	}

	// Behind SNAT or NodeLocal DNSCache, or from a hostNetwork pod, CoreDNS sees an address that
	// is no pod: the kubernetes plugin has no search list, stock autopath saves nothing, and
	// raceguard's inference still does, with the same outcomes.
	if err := l.StartKubeAPI(kubeapi.Sample(kubeapi.Pod{Namespace: "default", Name: "client", IP: "10.244.9.9"})); err != nil {
		t.Fatal(err)
	}
	nopod, nopodQ := run("")
	_, autopathNoPodQ := run("autopath @kubernetes")
	inferNoPod, inferNoPodQ := run("raceguard")
	if autopathNoPodQ != nopodQ {
		t.Errorf("Expected stock autopath to send as many queries as no completion for a client that is no pod, got %d and %d", autopathNoPodQ, nopodQ)
	}
	if inferNoPodQ >= nopodQ {
		t.Errorf("Expected raceguard infer to save queries for a client that is no pod, got %d against %d", inferNoPodQ, nopodQ)
	}
	for _, d := range differential.DiffLookups(nopod, inferNoPod) {
		t.Errorf("raceguard infer, client no pod: %s", d)
	}
	t.Logf("Client no pod: %d queries without completion, %d stock autopath, %d raceguard infer", nopodQ, autopathNoPodQ, inferNoPodQ)
}

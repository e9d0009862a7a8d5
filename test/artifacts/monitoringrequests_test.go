package artifacts

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/testenv"
)

// What clients sent: raceguard's own queries (its walks' tries, its sibling prefetches) go through
// the server's chain, and the prometheus plugin counts them in coredns_dns_requests_total with the
// clients'. raceguard exports them as coredns_raceguard_own_requests_total with the same server,
// zone and type, and every request rate the dashboard and the alert rules show or use is the
// difference, correct also where raceguard has no series (a stock server, a type it never sends).

// TestMonitoringClientRequests: every dashboard expression and alert rule that takes the rate of
// coredns_dns_requests_total subtracts raceguard's own queries, and the dashboard's request panel
// gives, in promtool, what the clients of each server sent: on a raceguard server the requests
// less its own queries, per type; on a stock server and for types raceguard never sent, the
// requests whole.
func TestMonitoringClientRequests(t *testing.T) {
	var exprs []string
	exprs = append(exprs, loadDashboard(t).exprs()...)
	for _, g := range plainRules(t).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	for _, e := range exprs {
		if strings.Contains(e, "coredns_dns_requests_total") && !strings.Contains(e, "coredns_raceguard_own_requests_total") {
			t.Errorf("%s: a request rate with raceguard's own queries in it: subtract coredns_raceguard_own_requests_total", e)
		}
	}

	var panelExpr string
	for _, p := range loadDashboard(t).panels() {
		if p.Title == "Client requests /s by type" && len(p.Targets) == 1 {
			panelExpr = p.Targets[0].Expr
		}
	}
	if panelExpr == "" {
		t.Fatal(`Dashboard: no "Client requests /s by type" panel with one query`)
	}
	fill := strings.NewReplacer("$__rate_interval", "5m", `"$cluster"`, `".*"`, `"$job"`, `".*"`, `"$node"`, `".*"`)
	expr, _ := json.Marshal(fill.Replace(panelExpr))

	// Per minute: node-a's raceguard server receives 120 A (60 of them its own), 120 AAAA (60),
	// 60 PTR (none); node-b's stock server 180 A. Two instances of node-a's job add up.
	series := func(metric, labels, values string) string {
		return fmt.Sprintf("      - series: '%s{%s}'\n        values: '%s'\n", metric, labels, values)
	}
	a := `job="raceguard-node-local",instance="a:9153",node="node-a",server="dns://:53",zone="."`
	b := `job="kube-dns",instance="b:9153",node="node-b",server="dns://:53",zone="."`
	var in strings.Builder
	for _, typ := range []string{"A", "AAAA"} {
		in.WriteString(series("coredns_dns_requests_total", a+`,view="",proto="udp",family="1",type="`+typ+`"`, "0+100x10"))
		in.WriteString(series("coredns_dns_requests_total", a+`,view="",proto="tcp",family="1",type="`+typ+`"`, "0+20x10"))
		in.WriteString(series("coredns_raceguard_own_requests_total", a+`,type="`+typ+`"`, "0+60x10"))
	}
	in.WriteString(series("coredns_dns_requests_total", a+`,view="",proto="udp",family="1",type="PTR"`, "0+60x10"))
	in.WriteString(series("coredns_dns_requests_total", b+`,view="",proto="udp",family="1",type="A"`, "0+180x10"))

	dir := t.TempDir()
	rules := filepath.Join(dir, "none.yaml")
	test := filepath.Join(dir, "test.yaml")
	if err := os.WriteFile(rules, []byte("groups: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`rule_files:
  - none.yaml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
%s    promql_expr_test:
      - expr: %s
        eval_time: 8m
        exp_samples:
          - labels: '{node="node-a", type="A"}'
            value: 1
          - labels: '{node="node-a", type="AAAA"}'
            value: 1
          - labels: '{node="node-a", type="PTR"}'
            value: 1
          - labels: '{node="node-b", type="A"}'
            value: 3
`, in.String(), expr)
	if err := os.WriteFile(test, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), testenv.Tool(t, "promtool", "prometheus"), "test", "rules", "test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("The dashboard's client request rate:\n%s\npromtool: %v\n%s", panelExpr, err, out)
	}
}

package artifacts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
)

// The monitoring artifacts: monitoring/grafana-dashboard.json, monitoring/prometheus-rules.yaml
// (plain Prometheus rules, unit-tested by promtool in prometheus-rules.test.yaml through `make
// monitoring-test`), the runbooks of monitoring/runbooks, and monitoring/kube-prometheus (the
// operator's objects and the dashboard's ConfigMap, kubeprometheus_test.go).

// decodeYAML decodes YAML into v, rejecting fields v does not have.
func decodeYAML(t *testing.T, name string, b []byte, v any) {
	t.Helper()
	j, err := yamlutil.ToJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func plainRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	decodeYAML(t, "monitoring/prometheus-rules.yaml", testenv.ReadRepoFile(t, "monitoring/prometheus-rules.yaml"), &rf)
	return rf
}

// TestMonitoringRules: every alert has a severity, a summary, a description, a duration and a
// runbook; every alert has a promtool unit test where it fires and one where it does not; and no
// alert duplicates one of kube-prometheus's. (monitoring/kube-prometheus/prometheusrule.yaml
// carries the same groups: TestMonitoringKubePrometheus.)
func TestMonitoringRules(t *testing.T) {
	plain := plainRules(t)
	alerts := map[string]bool{}
	for _, g := range plain.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("Alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("Alert %s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("Alert %s: want summary and description annotations", r.Alert)
			}
			if d, err := time.ParseDuration(r.For); err != nil || d < 5*time.Minute {
				t.Errorf("Alert %s: for %q, want 5m or more: these are trends, not blips", r.Alert, r.For)
			}
			if want := runbookBase + r.Alert + ".md"; r.Annotations["runbook_url"] != want {
				t.Errorf("Alert %s: runbook_url %q, want %s", r.Alert, r.Annotations["runbook_url"], want)
			}
			// A full conntrack table is node-exporter's (kube-prometheus's
			// NodeHighNumberConntrackEntriesUsed): no second alert for it.
			if strings.Contains(r.Expr, "coredns_raceguard_conntrack_entries") || strings.Contains(r.Expr, "early_drop") {
				t.Errorf("Alert %s alerts on the conntrack table's fill, which kube-prometheus does", r.Alert)
			}
		}
	}
	for _, want := range []string{"RaceguardConntrackDropsWithLateSiblings", "RaceguardConntrackRaceCorrelated",
		"RaceguardConntrackReaderDown", "RaceguardLateSiblingsHigh", "RaceguardCollapseOverflow", "RaceguardTableOverflow",
		"RaceguardNodeLocalDown", "RaceguardNodeLocalHolding", "RaceguardNodeLocalRulesMissing", "RaceguardNodeLocalAddressMissing",
		"RaceguardNodeLocalRestoresRising", "RaceguardNodeLocalErrorsRising", "RaceguardNodeLocalSelfCheckFailing",
		"RaceguardPodWatchDown"} {
		if !alerts[want] {
			t.Errorf("No alert %s", want)
		}
	}
	checkRunbooks(t, plain, loadDashboard(t))

	var tests struct {
		RuleFiles          []string `json:"rule_files"`
		EvaluationInterval string   `json:"evaluation_interval"`
		Tests              []struct {
			Name           string `json:"name"`
			Interval       string `json:"interval"`
			InputSeries    []any  `json:"input_series"`
			PromQLExprTest []any  `json:"promql_expr_test"`
			AlertRuleTest  []struct {
				EvalTime  string `json:"eval_time"`
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	decodeYAML(t, "monitoring/prometheus-rules.test.yaml", testenv.ReadRepoFile(t, "monitoring/prometheus-rules.test.yaml"), &tests)
	if !slices.Equal(tests.RuleFiles, []string{"prometheus-rules.yaml"}) {
		t.Errorf("monitoring/prometheus-rules.test.yaml: rule_files %v, want [prometheus-rules.yaml]", tests.RuleFiles)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if !alerts[a.Alertname] {
				t.Errorf("Test %q: no alert %s", tc.Name, a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for a := range alerts {
		if !fires[a] || !quiet[a] {
			t.Errorf("Alert %s: want a promtool test where it fires and one where it does not (fires %v, quiet %v)", a, fires[a], quiet[a])
		}
	}

	t.Run("promtool", func(t *testing.T) {
		p := testenv.Tool(t, "promtool", "prometheus")
		dir, err := lab.RepoPath("monitoring")
		if err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"check", "rules", "prometheus-rules.yaml"}, {"test", "rules", "prometheus-rules.test.yaml"}} {
			cmd := exec.CommandContext(t.Context(), p, args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource json.RawMessage          `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(testenv.ReadRepoFile(t, "monitoring/grafana-dashboard.json"), &d); err != nil {
		t.Fatalf("monitoring/grafana-dashboard.json: %v", err)
	}
	return d
}

func (d dashboard) panels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

func (d dashboard) exprs() []string {
	var out []string
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

// TestMonitoringDashboard: the template variables, the panels' data source and selectors, every
// expression valid PromQL (promtool), and every raceguard metric the README documents on a panel.
func TestMonitoringDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("Dashboard: want a uid and a title")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for name, typ := range map[string]string{"datasource": "datasource", "cluster": "query", "job": "query", "node": "query"} {
		if vars[name] != typ {
			t.Errorf("Dashboard: template variable %s of type %q, want %q", name, vars[name], typ)
		}
	}
	ids := map[int]bool{}
	for _, p := range d.panels() {
		if ids[p.ID] {
			t.Errorf("Panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("Panel %q: gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("Panel %q: data source %s, want ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("Panel %q: no queries", p.Title)
		}
		for _, tg := range p.Targets {
			// Every selector of the expression, not just one of them.
			sels := selectorRE.FindAllString(tg.Expr, -1)
			if len(sels) != len(metricName.FindAllString(tg.Expr, -1)) {
				t.Errorf("Panel %q: a metric without label matchers in %s", p.Title, tg.Expr)
			}
			for _, sel := range sels {
				for _, m := range []string{`cluster=~"$cluster"`, `job=~"$job"`, `node=~"$node"`} {
					if !strings.Contains(sel, m) {
						t.Errorf("Panel %q: selector %s of %s does not select %s", p.Title, sel, tg.Expr, m)
					}
				}
			}
		}
	}

	// Every raceguard metric the README documents has a panel.
	inDashboard := map[string]bool{}
	for _, n := range metricNames(d.exprs()...) {
		inDashboard[strings.TrimSuffix(n, "_bucket")] = true
	}
	readme := string(testenv.ReadRepoFile(t, "README.md"))
	if i := strings.Index(readme, "## Metrics"); i >= 0 {
		readme = readme[i:]
		if j := strings.Index(readme[3:], "\n## "); j >= 0 {
			readme = readme[:j+3]
		}
	}
	for _, n := range metricNames(readme) {
		if strings.HasPrefix(n, "coredns_raceguard_") && !strings.HasSuffix(n, "_") && !inDashboard[n] {
			t.Errorf("Dashboard: no panel shows %s, which README.md documents", n)
		}
	}

	t.Run("promtool", func(t *testing.T) {
		p := testenv.Tool(t, "promtool", "prometheus")
		// Each expression, with the dashboard's variables filled in, as a recording rule.
		fill := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", `"$cluster"`, `".*"`, `"$job"`, `".*"`, `"$node"`, `".*"`)
		var b strings.Builder
		b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
		for i, e := range d.exprs() {
			j, _ := json.Marshal(fill.Replace(e))
			fmt.Fprintf(&b, "      - record: dashboard:expr%d\n        expr: %s\n", i, j)
		}
		f := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.CommandContext(t.Context(), p, "check", "rules", f).CombinedOutput(); err != nil {
			t.Errorf("The dashboard's expressions are not valid PromQL: %v\n%s", err, out)
		}
	})
}

var metricName = regexp.MustCompile(`\bcoredns_[a-z0-9_]+`)

// selectorRE matches the series selectors of an expression: a metric name and its label matchers.
var selectorRE = regexp.MustCompile(`\bcoredns_[a-z0-9_]+\{[^}]*\}`)

// metricNames returns the sorted distinct coredns_* names in texts.
func metricNames(texts ...string) []string {
	set := map[string]bool{}
	for _, s := range texts {
		for _, n := range metricName.FindAllString(s, -1) {
			set[n] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// corednsMetrics are CoreDNS's own metrics the dashboard and rules may use, checked against
// CoreDNS v1.15.0's sources (plugin/metrics/vars, plugin/cache, plugin/forward,
// plugin/pkg/proxy): names that are exported but may have no sample yet in a short run.
// coredns_forward_request_duration_seconds and coredns_forward_responses_total are not here:
// they no longer exist (the forwarder's latency is coredns_proxy_request_duration_seconds).
var corednsMetrics = []string{
	"coredns_dns_requests_total", "coredns_dns_responses_total", "coredns_dns_request_duration_seconds",
	"coredns_cache_hits_total", "coredns_cache_misses_total", "coredns_cache_entries",
	"coredns_forward_healthcheck_broken_total", "coredns_proxy_request_duration_seconds",
	"coredns_panics_total", "coredns_build_info", "coredns_plugin_enabled",
}

// TestMonitoringMetricNames checks that every metric name the dashboard's expressions and the
// alert rules (expressions and annotations) use is one this build exports.
//
// It runs the built binary (RACEGUARD_COREDNS, else hack/build-coredns.sh) on loopback with
// raceguard (conntrack over netlink, or procfs without CAP_NET_ADMIN), cache, collapse, forward
// and prometheus, and sends queries that make the Vec metrics appear: A and AAAA pairs, a search
// expansion, a burst of identical misses, a late sibling and a retransmission. A name is accepted
// when the scrape has it (histogram series by their family's TYPE line). Some series only appear
// when something rare happens (a table overflows, conntrack drops a packet during a late
// sibling), so a raceguard name missing from the scrape is accepted when its short name (the part
// after coredns_raceguard_, without a histogram suffix) is a string literal in the module's
// non-test Go sources (repository root, plugin/ and internal/), where every raceguard metric is declared: a
// typo or a removed metric exists in neither and fails. A CoreDNS name missing from the scrape
// must be in corednsMetrics.
func TestMonitoringMetricNames(t *testing.T) {
	rules := plainRules(t)
	var texts []string
	texts = append(texts, loadDashboard(t).exprs()...)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			texts = append(texts, r.Expr)
			for _, a := range r.Annotations {
				texts = append(texts, a)
			}
		}
	}
	used := metricNames(texts...)
	if len(used) == 0 {
		t.Fatal("No metric names found in the dashboard and the rules")
	}

	scraped := scrapeBuild(t)
	sources := raceguardSources(t)
	var missing []string
	for _, n := range used {
		switch {
		case scraped[n]:
		case strings.HasPrefix(n, "coredns_raceguard_"):
			short := strings.TrimPrefix(n, "coredns_raceguard_")
			found := false
			for _, s := range []string{short, strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(short, "_bucket"), "_sum"), "_count")} {
				found = found || bytes.Contains(sources, []byte(`"`+s+`"`))
			}
			if found {
				t.Logf("%s: not in this short run's scrape; declared in the sources", n)
			} else {
				missing = append(missing, n)
			}
		default:
			base := n
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if strings.HasSuffix(n, suf) && slices.Contains(corednsMetrics, strings.TrimSuffix(n, suf)) {
					base = strings.TrimSuffix(n, suf)
				}
			}
			if !slices.Contains(corednsMetrics, base) {
				missing = append(missing, n)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("Metric names used by monitoring/ that this build does not export: %v", missing)
	}
}

// raceguardSources returns the module's non-test Go sources (root, plugin/ and internal/)
// concatenated.
func raceguardSources(t *testing.T) []byte {
	t.Helper()
	root, err := lab.RepoPath("")
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	add := func(path string) {
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
	}
	top, _ := filepath.Glob(filepath.Join(root, "*.go"))
	for _, f := range top {
		add(f)
	}
	for _, dir := range []string{"plugin", "internal"} {
		err = filepath.WalkDir(filepath.Join(root, dir), func(path string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				add(path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return all
}

// scrapeBuild runs the built CoreDNS, makes its metrics appear, and returns the metric names of
// its scrape: every family's name from its TYPE line, and a histogram's _bucket, _sum and _count.
func scrapeBuild(t *testing.T) map[string]bool {
	t.Helper()
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.LoopbackUpstream(t)
	zone := testenv.ClusterZone(t)
	dnsAddr := "127.0.0.1:" + testenv.FreeUDPTCPPort(t)
	metrics := testenv.FreePort(t)
	_, port, _ := strings.Cut(dnsAddr, ":")
	corefile := fmt.Sprintf(`.:%s {
    bind 127.0.0.1
    prometheus %s
    raceguard {
        node_search lab.internal
        interval 100ms
        window 10s
    }
    cache 30
    collapse
    file %s cluster.local
    forward . %s
}
`, port, metrics, zone, up.Addr)
	p, err := lab.StartProcess("", bin, t.TempDir(), "monitoring", corefile, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)

	conn, err := dns.Dial("udp", dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	send := func(m *dns.Msg) {
		if err := conn.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() {
		if _, err := conn.ReadMsg(); err != nil {
			t.Fatal(err)
		}
	}
	// A parallel pair from one socket, as glibc and musl send it, for a search expansion (a walk)
	// and for an external name.
	for _, name := range []string{"example.org.default.svc.cluster.local.", "hop2.example.net."} {
		send(new(dns.Msg).SetQuestion(name, dns.TypeA))
		send(new(dns.Msg).SetQuestion(name, dns.TypeAAAA))
		recv()
		recv()
	}
	// A late sibling: the AAAA a lost-packet timeout after the A was answered.
	send(new(dns.Msg).SetQuestion("v4only.example.net.", dns.TypeA))
	recv()
	time.Sleep(300 * time.Millisecond)
	send(new(dns.Msg).SetQuestion("v4only.example.net.", dns.TypeAAAA))
	recv()
	// A walk that finds every name NXDOMAIN, then the client's next try, answered from memory.
	for _, name := range []string{"nosuch.invalid.default.svc.cluster.local.", "nosuch.invalid.svc.cluster.local."} {
		send(new(dns.Msg).SetQuestion(name, dns.TypeA))
		send(new(dns.Msg).SetQuestion(name, dns.TypeAAAA))
		recv()
		recv()
	}
	// A retransmission (the same ID and question again) while the first try is still upstream:
	// it is counted, and joins its first try.
	up.SetDelay(200 * time.Millisecond)
	m := new(dns.Msg).SetQuestion("many.example.com.", dns.TypeA)
	send(m)
	time.Sleep(30 * time.Millisecond) // beyond the fingerprints' 5 ms clock
	send(m)
	recv()
	recv()
	// A burst of identical misses, held by the slow upstream so that they are collapsed into one.
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := new(dns.Msg).SetQuestion("deep.a.b.c.d.example.com.", dns.TypeA)
			lab.Exchange("", "udp", dnsAddr, q, 5*time.Second)
		}()
	}
	wg.Wait()
	up.SetDelay(0)
	time.Sleep(300 * time.Millisecond) // a few correlation intervals

	text, err := lab.ScrapeURL("", "http://"+metrics+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		names[f[2]] = true
		switch f[3] {
		case "histogram":
			names[f[2]+"_bucket"], names[f[2]+"_sum"], names[f[2]+"_count"] = true, true, true
		case "summary":
			names[f[2]+"_sum"], names[f[2]+"_count"] = true, true
		}
	}
	return names
}

package artifacts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// kustomizeTool is the kustomize the tests build monitoring/kube-prometheus with: the last
// release that builds with Go 1.26 (v5.8.1 wants Go 1.27). kubectl apply -k embeds kustomize.
var kustomizeTool = &testenv.GoTool{Module: "sigs.k8s.io/kustomize/kustomize/v5@v5.8.0"}

// releaseLabel is the label kube-prometheus-stack's Prometheus selects ServiceMonitors and
// PrometheusRules by (serviceMonitorSelector and ruleSelector: matchLabels release: <Helm release
// name>, when left empty), with the release name of its install instructions.
var releaseLabel = map[string]string{"release": "kube-prometheus-stack"}

// kustomize runs `kustomize build dir` with kustomizeTool, which the first call installs.
func kustomize(t *testing.T, dir string) []runtime.Object {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), kustomizeTool.Path(t), "build", dir).Output()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	f := filepath.Join(t.TempDir(), "built.yaml")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := decodeManifests(f)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestMonitoringKubePrometheus checks monitoring/kube-prometheus as `kubectl apply -k` would apply
// it: built with kustomize, every object carries the release label kube-prometheus-stack's
// Prometheus selects (and an overlay can change it); the PrometheusRule holds exactly the groups
// of prometheus-rules.yaml and the dashboard ConfigMap exactly grafana-dashboard.json, as
// hack/monitoring.sh writes them; the ServiceMonitor scrapes the node-local servers of
// deploy/node-local and nothing kube-prometheus's own CoreDNS monitors scrape already.
func TestMonitoringKubePrometheus(t *testing.T) {
	dir, err := lab.RepoPath("monitoring/kube-prometheus")
	if err != nil {
		t.Fatal(err)
	}

	// The generated files are current.
	gen := t.TempDir()
	script, err := lab.RepoPath("hack/monitoring.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), script)
	cmd.Env = append(os.Environ(), "OUT="+gen, "CHART_FILES="+t.TempDir()) // TestChartMatchesDeploy checks the chart's copies
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/monitoring.sh: %v\n%s", err, out)
	}
	for _, f := range []string{"prometheusrule.yaml", "grafana-dashboard.yaml"} {
		want, err := os.ReadFile(filepath.Join(gen, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(testenv.ReadRepoFile(t, "monitoring/kube-prometheus/"+f), want) {
			t.Errorf("monitoring/kube-prometheus/%s is not what hack/monitoring.sh makes of monitoring/: run make monitoring", f)
		}
	}

	objs := kustomize(t, dir)
	var sms []*serviceMonitor
	var rules []*prometheusRule
	var dashboards []*corev1.ConfigMap
	for _, o := range objs {
		m := o.(metav1.Object)
		if !labels.SelectorFromSet(releaseLabel).Matches(labels.Set(m.GetLabels())) {
			t.Errorf("%T %s: labels %v, which kube-prometheus-stack's default selector (%v) does not select", o, m.GetName(), m.GetLabels(), releaseLabel)
		}
		switch v := o.(type) {
		case *serviceMonitor:
			sms = append(sms, v)
		case *prometheusRule:
			rules = append(rules, v)
		case *corev1.ConfigMap:
			dashboards = append(dashboards, v)
		default:
			t.Errorf("monitoring/kube-prometheus: an unexpected %T", o)
		}
	}
	if len(sms) != 1 || len(rules) != 1 || len(dashboards) != 1 {
		t.Fatalf("monitoring/kube-prometheus: %d ServiceMonitors, %d PrometheusRules, %d ConfigMaps; want one each", len(sms), len(rules), len(dashboards))
	}

	if plain := plainRules(t); !reflect.DeepEqual(plain.Groups, rules[0].Spec.Groups) {
		t.Error("The PrometheusRule's groups differ from monitoring/prometheus-rules.yaml's")
	}
	cm := dashboards[0]
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("ConfigMap %s: labels %v, want grafana_dashboard: \"1\" (Grafana's dashboard sidecar)", cm.Name, cm.Labels)
	}
	if len(cm.Data) != 1 || cm.Data["raceguard.json"] != string(testenv.ReadRepoFile(t, "monitoring/grafana-dashboard.json")) {
		t.Errorf("ConfigMap %s: want exactly raceguard.json, monitoring/grafana-dashboard.json", cm.Name)
	}

	// The ServiceMonitor reaches the node-local servers' metrics; its selector is its own (the
	// release label goes to metadata only).
	sm := sms[0]
	nodeLocal := loadBundle(t, "node-local")
	pod := oneOf[*appsv1.DaemonSet](t, nodeLocal).Spec.Template
	checkServiceMonitor(t, sm, nodeLocal, pod)
	if _, ok := sm.Spec.Selector.MatchLabels["release"]; ok {
		t.Errorf("ServiceMonitor %s: the release label reached its selector", sm.Name)
	}
	// The metrics Service keeps not-ready pods, so a failing server stays a target (up 0) for
	// RaceguardNodeLocalDown.
	sel, _ := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	for _, svc := range objectsOf[*corev1.Service](nodeLocal) {
		if sel.Matches(labels.Set(svc.Labels)) && !svc.Spec.PublishNotReadyAddresses {
			t.Errorf("Service %s: want publishNotReadyAddresses, so that RaceguardNodeLocalDown sees a failing pod", svc.Name)
		}
	}

	// No double scrape: no Service this ServiceMonitor selects, in either variant, is kube-dns
	// or sends to kube-dns's pods, which kube-prometheus-stack's and kube-prometheus's CoreDNS
	// monitors scrape already (the cluster variant's pods among them).
	kubeDNS := labels.SelectorFromSet(map[string]string{"k8s-app": "kube-dns"})
	for _, variant := range []string{"node-local", "cluster"} {
		b := loadBundle(t, variant)
		for _, svc := range objectsOf[*corev1.Service](b) {
			if !sel.Matches(labels.Set(svc.Labels)) {
				continue
			}
			if svc.Name == "kube-dns" || kubeDNS.Matches(labels.Set(svc.Spec.Selector)) {
				t.Errorf("ServiceMonitor %s selects Service %s of deploy/%s, which reaches kube-dns's pods: scraped twice", sm.Name, svc.Name, variant)
			}
		}
	}
	if kubeDNS.Matches(labels.Set(pod.Labels)) {
		t.Errorf("The node-local pods are labelled k8s-app: kube-dns: kube-prometheus's CoreDNS monitors scrape them too")
	}

	// The label is configurable: an overlay replaces it.
	overlay := t.TempDir()
	base := filepath.Join(overlay, "base")
	if out, err := exec.CommandContext(t.Context(), "cp", "-r", dir, base).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	k := "resources:\n  - base\nlabels:\n  - pairs:\n      release: my-prometheus\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range kustomize(t, overlay) {
		if m := o.(metav1.Object); m.GetLabels()["release"] != "my-prometheus" {
			t.Errorf("Overlay: %T %s has release %q, want my-prometheus", o, m.GetName(), m.GetLabels()["release"])
		}
	}
}

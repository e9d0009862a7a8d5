package artifacts

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
)

// The Helm chart of the node-local variant, charts/raceguard, and deploy/node-local never drift:
// rendered with its default values the chart is deploy/node-local object for object (but Helm's
// own labels and the image tag), and with its monitoring values on, it adds exactly the objects
// of monitoring/kube-prometheus. So the plain manifests stay hand-written, with the comments that
// explain them, and a change to either side fails here until the other follows.

// monitoringOn turns on the chart's three monitoring objects.
var monitoringOn = []string{"monitoring.serviceMonitor.enabled=true", "monitoring.prometheusRule.enabled=true", "monitoring.dashboard.enabled=true"}

func chartPath(t *testing.T) string {
	t.Helper()
	p, err := lab.RepoPath("charts/raceguard")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// chartMeta is the part of Chart.yaml the tests read.
type chartMeta struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	AppVersion string `json:"appVersion"`
}

func readChartMeta(t *testing.T, dir string) chartMeta {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m chartMeta
	if err := yamlutil.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096).Decode(&m); err != nil {
		t.Fatalf("%s/Chart.yaml: %v", dir, err)
	}
	return m
}

// chartValuesFile writes values to a file for helm's --values.
func chartValuesFile(t *testing.T, values string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestChartLint runs helm lint --strict on the chart with its defaults, with its monitoring on,
// and with every value changed (testdata/chart-values.yaml).
func TestChartLint(t *testing.T) {
	chart := chartPath(t)
	every, err := filepath.Abs("testdata/chart-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"defaults":    nil,
		"monitoring":  {"--set", strings.Join(monitoringOn, ",")},
		"every value": {"--values", every},
	} {
		out, err := testenv.Helm(t, append([]string{"lint", "--strict", "--namespace", "kube-system", chart}, args...)...)
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
}

// TestChartVersion: the chart installs the release the README's Compilation section names (its
// appVersion is the default image tag), and is versioned with it; hack/release.sh moves all three.
func TestChartVersion(t *testing.T) {
	meta := readChartMeta(t, chartPath(t))
	readme := string(testenv.ReadRepoFile(t, "README.md"))
	m := goGetRE.FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README.md: no go get line of the module")
	}
	if meta.AppVersion != m[1] || "v"+meta.Version != m[1] {
		t.Errorf("Chart.yaml: version %q, appVersion %q; want %q and %q, the release README.md names", meta.Version, meta.AppVersion, strings.TrimPrefix(m[1], "v"), m[1])
	}
}

// TestChartMatchesDeploy holds the chart and the plain manifests together: the chart with its
// defaults renders deploy/node-local object for object, its monitoring objects are
// monitoring/kube-prometheus's as kustomize builds them, and its copies of monitoring/'s rules
// and dashboard are current.
func TestChartMatchesDeploy(t *testing.T) {
	chart := chartPath(t)
	meta := readChartMeta(t, chart)

	// The defaults: deploy/node-local, but for the image's tag.
	rendered := mustTemplate(t, chart, "raceguard", "kube-system", nil)
	compareObjects(t, rendered, loadBundle(t, "node-local"))
	want := makefileVar(t, "RELEASE_IMAGE") + ":" + meta.AppVersion
	for _, ds := range objectsOf[*appsv1.DaemonSet](rendered) {
		for _, c := range ds.Spec.Template.Spec.Containers {
			if c.Image != want {
				t.Errorf("Chart: image %s, want %s: the image a release publishes (Makefile RELEASE_IMAGE), tagged with the chart's appVersion", c.Image, want)
			}
		}
	}
	// Observe-only: deploy/node-local-observe.
	compareObjects(t, mustTemplate(t, chart, "raceguard", "kube-system", nil, "observe=true"), loadBundle(t, "node-local-observe"))

	// The monitoring objects: monitoring/kube-prometheus, with the same release label.
	withMonitoring := mustTemplate(t, chart, "raceguard", "kube-system", nil, monitoringOn...)
	dir, err := lab.RepoPath("monitoring/kube-prometheus")
	if err != nil {
		t.Fatal(err)
	}
	monitoring := &bundle{name: "monitoring/kube-prometheus (kustomize build)", objs: kustomize(t, dir)}
	added := &bundle{name: withMonitoring.name}
	for _, o := range withMonitoring.objs {
		if !slices.ContainsFunc(rendered.objs, func(r runtime.Object) bool { return objectKey(r) == objectKey(o) }) {
			added.objs = append(added.objs, o)
		}
	}
	compareObjects(t, added, monitoring)

	// The chart's copies of the rules and the dashboard (Helm reads files inside the chart only).
	for _, f := range []string{"prometheus-rules.yaml", "grafana-dashboard.json"} {
		if !bytes.Equal(testenv.ReadRepoFile(t, "charts/raceguard/files/"+f), testenv.ReadRepoFile(t, "monitoring/"+f)) {
			t.Errorf("charts/raceguard/files/%s is not monitoring/%s: run make monitoring", f, f)
		}
	}
}

// TestChartChecks runs the checks of deploy/node-local (TestDeployManifests) and of its
// monitoring (TestMonitoringKubePrometheus) on the chart as rendered: with its defaults and its
// monitoring on, in link-local mode, under another release name, whose objects, job and alert
// must follow the name, and without the pod watch.
func TestChartChecks(t *testing.T) {
	chart := chartPath(t)
	for _, tc := range []struct {
		name, release string
		set           []string
		clusterIP     string // the second bind address; "" in link-local mode
		prefix        string // of the object names
		search        string // raceguard's search
	}{
		{"defaults", "raceguard", monitoringOn, "{$KUBE_DNS_SERVICE_HOST}", "raceguard", "pods"},
		{"link-local", "raceguard", append([]string{"transparent=false"}, monitoringOn...), "", "raceguard", "pods"},
		{"release name", "dns", monitoringOn, "{$KUBE_DNS_SERVICE_HOST}", "dns-raceguard", "pods"},
		{"cluster IP", "raceguard", append([]string{"kubeDNS.clusterIP=10.96.0.10"}, monitoringOn...), "10.96.0.10", "raceguard", "pods"},
		{"observe", "raceguard", append([]string{"observe=true"}, monitoringOn...), "observe", "raceguard", "infer"},
		{"no pod watch", "raceguard", append([]string{"podWatch.enabled=false"}, monitoringOn...), "{$KUBE_DNS_SERVICE_HOST}", "raceguard", "infer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mustTemplate(t, chart, tc.release, "kube-system", nil, tc.set...)
			operator := &bundle{name: b.name}
			builtIn := &bundle{name: b.name}
			for _, o := range b.objs {
				switch o.(type) {
				case *serviceMonitor, *prometheusRule:
					operator.objs = append(operator.objs, o)
				default:
					builtIn.objs = append(builtIn.objs, o)
				}
			}
			// Without the operator's objects, what installs in any cluster.
			var pod corev1.PodTemplateSpec
			if tc.clusterIP == "observe" {
				pod = checkObserveBundle(t, builtIn)
			} else {
				pod = checkNodeLocalBundle(t, builtIn, tc.clusterIP, "kube-dns-upstream")
			}
			checkSearch(t, b, pod, tc.search)
			ds := oneOf[*appsv1.DaemonSet](t, b)
			if want := tc.prefix + "-node-local"; ds.Name != want || ds.Spec.Selector.MatchLabels["k8s-app"] != want {
				t.Errorf("DaemonSet %s with selector %v, want %s, k8s-app %s", ds.Name, ds.Spec.Selector.MatchLabels, want, want)
			}

			// The ServiceMonitor scrapes the metrics Service, which keeps not-ready pods, and
			// nothing that reaches kube-dns's pods.
			sm := oneOf[*serviceMonitor](t, operator)
			checkServiceMonitor(t, sm, b, pod)
			sel, _ := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			kubeDNS := labels.SelectorFromSet(map[string]string{"k8s-app": "kube-dns"})
			var job string
			for _, svc := range objectsOf[*corev1.Service](b) {
				if !sel.Matches(labels.Set(svc.Labels)) {
					continue
				}
				job = svc.Name // a ServiceMonitor without jobLabel: the Service's name
				if !svc.Spec.PublishNotReadyAddresses {
					t.Errorf("Service %s: want publishNotReadyAddresses, so that RaceguardNodeLocalDown sees a failing pod", svc.Name)
				}
				if svc.Name == "kube-dns" || kubeDNS.Matches(labels.Set(svc.Spec.Selector)) {
					t.Errorf("ServiceMonitor %s selects Service %s, which reaches kube-dns's pods: scraped twice", sm.Name, svc.Name)
				}
			}
			if _, ok := sm.Spec.Selector.MatchLabels["release"]; ok {
				t.Errorf("ServiceMonitor %s: the release label reached its selector", sm.Name)
			}
			// RaceguardNodeLocalDown names this release's job.
			rule := oneOf[*prometheusRule](t, operator)
			down := ""
			for _, g := range rule.Spec.Groups {
				for _, r := range g.Rules {
					if r.Alert == "RaceguardNodeLocalDown" {
						down = r.Expr
					}
				}
			}
			if !strings.Contains(down, `job="`+job+`"`) {
				t.Errorf("RaceguardNodeLocalDown: %q, want the ServiceMonitor's job %q", down, job)
			}
			for _, o := range operator.objs {
				if l := o.(metav1.Object).GetLabels(); l["release"] != "kube-prometheus-stack" {
					t.Errorf("%s: labels %v, want release: kube-prometheus-stack, which kube-prometheus-stack's default selectors pick", objectKey(o), l)
				}
			}
		})
	}
}

// everyValueCorefile is the Corefile of testdata/chart-values.yaml: each value where it belongs.
const everyValueCorefile = `.:53 {
    bind 169.254.20.11 10.96.0.53
    nodelocal {
        health_port 8081
        interface dns0
        firewall off
        check_interval 30s
        probe kubernetes.default.svc.cluster.example
    }
    errors
    health 169.254.20.11:8081 {
        lameduck 5s
    }
    ready 169.254.20.11:8182
    prometheus :9154
    reload
    raceguard {
        search infer
        cluster_domain cluster.example
        node_search none
        node_local on
        parallel_walk off
        walk_deadline 300ms
        walk_budget 20 100
        max_walks 64
        sibling_prefetch off
        conntrack procfs
        interval 2s
        window 5m
        fingerprints 4194304
        node node-a
    }
    cache {
        success 1000 60
        denial 1000 10
    }
    collapse {
        max_keys 5000
        max_waiters 100
    }
    forward . {$COREDNS_UPSTREAM_SERVICE_HOST} {
        expire 2s
        max_age 2s
    }
}
`

// TestChartValues renders the chart with every value changed (testdata/chart-values.yaml) and
// checks that each lands where values.yaml says.
func TestChartValues(t *testing.T) {
	every, err := filepath.Abs("testdata/chart-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := mustTemplate(t, chartPath(t), "dns", "dns", []string{every})
	ds := oneOf[*appsv1.DaemonSet](t, b)
	pod := ds.Spec.Template
	if got := corefileOf(t, b, pod); got != everyValueCorefile {
		t.Errorf("Corefile:\n%s", lineDiff(everyValueCorefile, got))
	}

	// Names: fullnameOverride, nameOverride, the ServiceAccount's name.
	if ds.Name != "dns-cache-node-local" || ds.Labels["app.kubernetes.io/name"] != "rg" || pod.Spec.ServiceAccountName != "dns-cache-sa" {
		t.Errorf("DaemonSet %s, name label %q, ServiceAccount %q; want dns-cache-node-local, rg, dns-cache-sa", ds.Name, ds.Labels["app.kubernetes.io/name"], pod.Spec.ServiceAccountName)
	}
	for _, o := range b.objs {
		if m := o.(metav1.Object); m.GetNamespace() != "dns" && objectKey(o) != "*v1.ConfigMap monitoring/dns-cache-grafana-dashboard" {
			t.Errorf("%s: want namespace dns, the release's", objectKey(o))
		}
	}
	sa := false
	for _, s := range objectsOf[*corev1.ServiceAccount](b) {
		sa = sa || s.Name == "dns-cache-sa"
	}
	if !sa {
		t.Error("No ServiceAccount dns-cache-sa")
	}

	// The pod.
	c := pod.Spec.Containers[0]
	for _, check := range []struct {
		what      string
		got, want any
	}{
		{"image", c.Image, "registry.example/dns/raceguard:v9.8.7"},
		{"imagePullPolicy", c.ImagePullPolicy, corev1.PullAlways},
		{"imagePullSecrets", pod.Spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "registry-key"}}},
		{"liveness probe", c.LivenessProbe.HTTPGet.Host + ":" + c.LivenessProbe.HTTPGet.Port.String(), "169.254.20.11:8081"},
		{"readiness probe", c.ReadinessProbe.HTTPGet.Host + ":" + c.ReadinessProbe.HTTPGet.Port.String(), "169.254.20.11:8182"},
		{"memory limit", c.Resources.Limits.Memory().String(), "512Mi"},
		{"cpu request", c.Resources.Requests.Cpu().String(), "100m"},
		{"tolerations", pod.Spec.Tolerations, []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "dns", Effect: corev1.TaintEffectNoSchedule}}},
		{"nodeSelector", pod.Spec.NodeSelector, map[string]string{"kubernetes.io/os": "linux", "dns": "true"}},
		{"affinity", pod.Spec.Affinity != nil && pod.Spec.Affinity.NodeAffinity != nil, true},
		{"priorityClassName", pod.Spec.PriorityClassName, "dns-critical"},
		{"maxSurge", ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge.String(), "1"},
		{"terminationGracePeriodSeconds", *pod.Spec.TerminationGracePeriodSeconds, int64(60)},
		{"pod annotation", pod.Annotations["example.org/note"], "raceguard"},
		{"pod label", pod.Labels["team"], "dns"},
		// podWatch.enabled false: no token, no RBAC (and search infer, in the Corefile above).
		{"automountServiceAccountToken", *pod.Spec.AutomountServiceAccountToken, false},
		{"ClusterRoles and bindings", len(objectsOf[*rbacv1.ClusterRole](b)) + len(objectsOf[*rbacv1.ClusterRoleBinding](b)), 0},
		// kubeletResolvConf: systemd-resolved's file, its directory mounted.
		{"kubelet's resolv.conf", hostPathMount(pod, "kubelet-resolv-conf"), "/run/systemd/resolve Directory at /host/run/systemd/resolve"},
	} {
		if !reflect.DeepEqual(check.got, check.want) {
			t.Errorf("%s: %v, want %v", check.what, check.got, check.want)
		}
	}

	// The Services: the upstream under its name with the given selector, the metrics port.
	for _, svc := range objectsOf[*corev1.Service](b) {
		switch svc.Name {
		case "coredns-upstream":
			if !reflect.DeepEqual(svc.Spec.Selector, map[string]string{"app.kubernetes.io/name": "coredns"}) {
				t.Errorf("Service coredns-upstream: selector %v, want only app.kubernetes.io/name: coredns", svc.Spec.Selector)
			}
		case "dns-cache-node-local":
			if p := svc.Spec.Ports[0]; p.Port != 9154 || p.TargetPort.IntValue() != 9154 || svc.Annotations["prometheus.io/port"] != "9154" {
				t.Errorf("Service dns-cache-node-local: port %v, annotations %v; want 9154", p, svc.Annotations)
			}
		default:
			t.Errorf("Unexpected Service %s", svc.Name)
		}
	}

	// Monitoring: the release label, the interval, the dashboard's namespace and sidecar label.
	sm := oneOf[*serviceMonitor](t, b)
	checkServiceMonitor(t, sm, b, pod)
	if sm.Labels["release"] != "my-prometheus" || sm.Spec.Endpoints[0].Interval != "30s" {
		t.Errorf("ServiceMonitor: labels %v, interval %s; want release my-prometheus, 30s", sm.Labels, sm.Spec.Endpoints[0].Interval)
	}
	if pr := oneOf[*prometheusRule](t, b); pr.Labels["release"] != "my-prometheus" {
		t.Errorf("PrometheusRule: labels %v, want release my-prometheus", pr.Labels)
	}
	for _, cm := range objectsOf[*corev1.ConfigMap](b) {
		if cm.Name == "dns-cache-grafana-dashboard" && (cm.Labels["grafana_dashboard"] != "yes" || cm.Labels["release"] != "my-prometheus") {
			t.Errorf("Dashboard ConfigMap: labels %v, want grafana_dashboard yes and release my-prometheus", cm.Labels)
		}
	}

	// The release label goes, where a Prometheus selects every ServiceMonitor and PrometheusRule
	// (values.yaml: release: null).
	b = mustTemplate(t, chartPath(t), "raceguard", "kube-system", nil, append([]string{"monitoring.labels.release=null"}, monitoringOn...)...)
	for _, o := range b.objs {
		if v, ok := o.(metav1.Object).GetLabels()["release"]; ok {
			t.Errorf("monitoring.labels.release=null: %s is labelled release: %s", objectKey(o), v)
		}
	}
}

// hostPathMount describes the hostPath volume name of pod and where its container mounts it.
func hostPathMount(pod corev1.PodTemplateSpec, name string) string {
	for _, v := range pod.Spec.Volumes {
		if v.Name != name || v.HostPath == nil {
			continue
		}
		s := v.HostPath.Path + " " + string(ptr.Deref(v.HostPath.Type, ""))
		for _, m := range pod.Spec.Containers[0].VolumeMounts {
			if m.Name == name {
				s += " at " + m.MountPath
			}
		}
		return s
	}
	return ""
}

// TestChartCorefile starts the Corefile the chart makes of every value changed, in this process,
// as TestDeployCorefiles starts deploy/'s (without the node set-up, which would change this
// machine: test/labtest runs deploy/'s Corefile with it): raceguard, collapse and nodelocal accept
// every option the values write. It answers through its upstream.
func TestChartCorefile(t *testing.T) {
	every, err := filepath.Abs("testdata/chart-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := mustTemplate(t, chartPath(t), "dns", "dns", []string{every})
	corefile := corefileOf(t, b, oneOf[*appsv1.DaemonSet](t, b).Spec.Template)
	up := testenv.LoopbackUpstream(t)
	t.Setenv("COREDNS_UPSTREAM_SERVICE_HOST", up.Addr)
	corefile = servable(corefile, map[string]string{"health": testenv.FreePort(t), "ready": testenv.FreePort(t), "prometheus": "127.0.0.1:0"})
	i, udp, _, err := testenv.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("The chart's Corefile did not start: %v\n%s", err, corefile)
	}
	defer testenv.Stop(i)
	if got := answerA(exchangeA(t, "udp", udp, "example.org.")); got != "192.0.2.10" {
		t.Errorf("example.org A %q, want 192.0.2.10 from the upstream", got)
	}
}

// TestChartRejects: what the chart refuses to render, each with a message that says why.
func TestChartRejects(t *testing.T) {
	chart := chartPath(t)
	for _, tc := range []struct {
		name, namespace string
		set             []string
		want            string
	}{
		{"another namespace than kube-dns's", "default", nil, "install the chart into kube-system"},
		{"a misspelt option", "kube-system", []string{"raceguard.walkBugdet=5"}, "walkBugdet"},
		{"a misspelt value", "kube-system", []string{"priorityClass=dns"}, "priorityClass"},
		{"conntrack on", "kube-system", []string{"raceguard.conntrack=true"}, "conntrack"},
		{"a port out of range", "kube-system", []string{"ports.metrics=70000"}, "metrics"},
		{"an unknown pull policy", "kube-system", []string{"image.pullPolicy=Sometimes"}, "pullPolicy"},
		{"search pods without the pod watch", "kube-system", []string{"podWatch.enabled=false", "raceguard.search=pods"}, "podWatch.enabled"},
		{"the pod watch for the namespace's default account", "kube-system", []string{"serviceAccount.create=false"}, "serviceAccount.name"},
		{"a relative resolv.conf", "kube-system", []string{"kubeletResolvConf.path=etc/resolv.conf"}, "kubeletResolvConf"},
		{"the node's /etc mounted", "kube-system", []string{"kubeletResolvConf.mountDirectory=true"}, "/etc"},
	} {
		_, err := helmTemplate(t, chart, "raceguard", tc.namespace, nil, tc.set...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error naming %q, got %v", tc.name, tc.want, err)
		}
	}
}

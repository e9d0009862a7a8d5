package artifacts

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/coredns/coredns/plugin/loadbalance" // the cluster Corefile's plugins that testenv does not link
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/reload"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/kubeapi"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// The manifests in deploy/ are plain YAML, one directory per variant: node-local (a hostNetwork
// DaemonSet on a link-local address, forwarding to kube-dns) and cluster (a kube-dns
// replacement). The tests below decode every document strictly into the official Go types,
// check what a reviewer would check, and start every Corefile.

// Strict decoding: client-go's scheme for the built-in kinds, and local structs for the two
// Prometheus-operator kinds (CRDs, which have no Go types in this module's graph). With
// EnableStrict the YAML serializer rejects unknown and duplicate fields.
var manifestDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	gv := schema.GroupVersion{Group: "monitoring.coreos.com", Version: "v1"}
	s.AddKnownTypeWithName(gv.WithKind("ServiceMonitor"), &serviceMonitor{})
	s.AddKnownTypeWithName(gv.WithKind("PrometheusRule"), &prometheusRule{})
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor that the manifests use;
// strict decoding makes any other field an error (add it here when a manifest needs it).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port              string          `json:"port"`
			Path              string          `json:"path,omitempty"`
			Scheme            string          `json:"scheme,omitempty"`
			Interval          string          `json:"interval,omitempty"`
			ScrapeTimeout     string          `json:"scrapeTimeout,omitempty"`
			HonorLabels       bool            `json:"honorLabels,omitempty"`
			Relabelings       []relabelConfig `json:"relabelings,omitempty"`
			MetricRelabelings []relabelConfig `json:"metricRelabelings,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type relabelConfig struct {
	SourceLabels []string `json:"sourceLabels,omitempty"`
	Separator    string   `json:"separator,omitempty"`
	TargetLabel  string   `json:"targetLabel,omitempty"`
	Regex        string   `json:"regex,omitempty"`
	Replacement  *string  `json:"replacement,omitempty"`
	Action       string   `json:"action,omitempty"`
}

// prometheusRule is monitoring.coreos.com/v1 PrometheusRule, whose groups are those of the plain
// Prometheus rules format.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ruleFile `json:"spec"`
}

type ruleFile struct {
	Groups []ruleGroup `json:"groups"`
}

type ruleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []struct {
		Record      string            `json:"record,omitempty"`
		Alert       string            `json:"alert,omitempty"`
		Expr        string            `json:"expr"`
		For         string            `json:"for,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"rules"`
}

// DeepCopyObject implements runtime.Object; the tests never mutate a decoded object.
func (s *serviceMonitor) DeepCopyObject() runtime.Object { c := *s; return &c }

// DeepCopyObject implements runtime.Object; the tests never mutate a decoded object.
func (p *prometheusRule) DeepCopyObject() runtime.Object { c := *p; return &c }

// decodeManifests strictly decodes every YAML document of file.
func decodeManifests(file string) ([]runtime.Object, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var objs []runtime.Object
	r := yamlutil.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if onlyComments(doc) {
			continue
		}
		obj, _, err := manifestDecoder.Decode(doc, nil, nil)
		if err != nil { // strict errors come with a decoded object: still an error
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		objs = append(objs, obj)
	}
}

func onlyComments(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "---" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// bundle is one set of manifests, decoded: a deploy/ directory, or a chart rendered by helm
// template.
type bundle struct {
	name string // deploy/node-local, charts/raceguard, ...: where the manifests come from
	objs []runtime.Object
}

func loadBundle(t *testing.T, dir string) *bundle {
	t.Helper()
	path, err := lab.RepoPath(filepath.Join("deploy", dir))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(path, "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("No manifests in %s", path)
	}
	b := &bundle{name: "deploy/" + dir}
	for _, f := range files {
		objs, err := decodeManifests(f)
		if err != nil {
			t.Fatal(err)
		}
		b.objs = append(b.objs, objs...)
	}
	return b
}

// checkBuiltIn fails t for every object of b whose kind a cluster without the Prometheus
// operator does not have: `kubectl apply -f deploy/<variant>/` must work in any cluster. The
// operator's objects are in monitoring/kube-prometheus, applied apart.
func checkBuiltIn(t *testing.T, b *bundle) {
	t.Helper()
	for _, o := range b.objs {
		switch o.(type) {
		case *serviceMonitor, *prometheusRule:
			t.Errorf("%s: a %T (%s) needs the Prometheus operator's CRDs: it belongs in monitoring/kube-prometheus", b.name, o, o.(metav1.Object).GetName())
		}
	}
}

func objectsOf[T runtime.Object](b *bundle) []T {
	var out []T
	for _, o := range b.objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func oneOf[T runtime.Object](t *testing.T, b *bundle) T {
	t.Helper()
	all := objectsOf[T](b)
	if len(all) != 1 {
		var zero T
		t.Fatalf("%s: expected one %T, found %d", b.name, zero, len(all))
	}
	return all[0]
}

// corefileOf returns the Corefile of the ConfigMap that the pod template mounts and passes to
// -conf.
func corefileOf(t *testing.T, b *bundle, pod corev1.PodTemplateSpec) string {
	t.Helper()
	c := pod.Spec.Containers[0]
	i := slices.Index(c.Args, "-conf")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("%s: container %s has no -conf argument: %v", b.name, c.Name, c.Args)
	}
	conf := c.Args[i+1]
	for _, m := range c.VolumeMounts {
		if filepath.Dir(conf) != m.MountPath {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			key := filepath.Base(conf)
			for _, it := range v.ConfigMap.Items {
				if it.Path == filepath.Base(conf) {
					key = it.Key
				}
			}
			for _, cm := range objectsOf[*corev1.ConfigMap](b) {
				if cm.Name == v.ConfigMap.Name {
					if s, ok := cm.Data[key]; ok {
						return s
					}
				}
			}
			t.Fatalf("%s: ConfigMap %s with key %s, mounted for %s, is not among the manifests", b.name, v.ConfigMap.Name, key, conf)
		}
	}
	t.Fatalf("%s: no ConfigMap volume is mounted at %s", b.name, filepath.Dir(conf))
	return ""
}

// directiveArgs returns the arguments of every line of corefile whose first word is directive
// (a trailing "{" is dropped; comments are ignored).
func directiveArgs(corefile, directive string) [][]string {
	var out [][]string
	for _, line := range strings.Split(corefile, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != directive {
			continue
		}
		args := f[1:]
		if n := len(args); n > 0 && args[n-1] == "{" {
			args = args[:n-1]
		}
		out = append(out, args)
	}
	return out
}

// corefileListener returns the host and port a health, ready or prometheus directive listens on,
// applying the plugin's default address.
func corefileListener(t *testing.T, corefile, directive string) (host string, port int) {
	t.Helper()
	defaults := map[string]string{"health": ":8080", "ready": ":8181", "prometheus": "localhost:9153"}
	all := directiveArgs(corefile, directive)
	if len(all) != 1 {
		t.Fatalf("Expected one %s directive in the Corefile, found %d:\n%s", directive, len(all), corefile)
	}
	addr := defaults[directive]
	if len(all[0]) > 0 {
		addr = all[0][0]
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %s: %v", directive, addr, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s %s: %v", directive, addr, err)
	}
	return h, port
}

// makefileImage returns the image `make image` tags as :dev.
func makefileImage(t *testing.T) string {
	t.Helper()
	return makefileVar(t, "IMAGE") + ":dev"
}

// makefileVar returns the value of the Makefile's NAME = line.
func makefileVar(t *testing.T, name string) string {
	t.Helper()
	b := testenv.ReadRepoFile(t, "Makefile")
	m := regexp.MustCompile(`(?m)^` + name + `\s*\??=\s*(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("Makefile: no %s = line", name)
	}
	return string(m[1])
}

// TestDeployManifestsStrict shows that the decoder used on deploy/ rejects what it must.
func TestDeployManifestsStrict(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"unknown field":        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  clusterIp: None\n",
		"duplicate field":      "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n",
		"unknown field in CRD": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: x\nspec:\n  selectors: {}\n",
		"unknown kind":         "apiVersion: v1\nkind: Servic\nmetadata:\n  name: x\n",
	} {
		f := filepath.Join(dir, "m.yaml")
		if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := decodeManifests(f); err == nil {
			t.Errorf("%s: expected a decoding error for\n%s", name, doc)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestDeployManifests checks both variants: strict decoding, then the properties each must have.
func TestDeployManifests(t *testing.T) {
	image := makefileImage(t)
	var images []string
	for _, dir := range []string{"node-local", "node-local-observe", "cluster"} {
		t.Run(dir, func(t *testing.T) {
			b := loadBundle(t, dir)
			var pod corev1.PodTemplateSpec
			switch dir {
			case "node-local":
				pod = checkNodeLocalBundle(t, b, "{$KUBE_DNS_SERVICE_HOST}", "kube-dns-upstream")
			case "node-local-observe":
				pod = checkObserveBundle(t, b)
			case "cluster":
				checkNamespaces(t, b)
				d := oneOf[*appsv1.Deployment](t, b)
				pod = d.Spec.Template
				checkSelects(t, "Deployment selector", d.Spec.Selector, pod.Labels)
				checkCluster(t, b, d)
				checkBuiltIn(t, b)
				checkPod(t, b, pod)
				checkRBAC(t, b, pod, corefileOf(t, b, pod))
			}
			for _, c := range pod.Spec.Containers {
				images = append(images, c.Image)
			}
		})
	}
	for _, img := range images {
		if img != image {
			t.Errorf("Image %s: want %s, the image `make image` builds (Makefile IMAGE), in every manifest", img, image)
		}
	}
}

// checkNodeLocalBundle runs every check of the node-local variant on b (deploy/node-local, or
// the chart rendered), with checkNodeLocal's clusterIP and upstream, and returns the pod template.
func checkNodeLocalBundle(t *testing.T, b *bundle, clusterIP, upstream string) corev1.PodTemplateSpec {
	t.Helper()
	checkNamespaces(t, b)
	ds := oneOf[*appsv1.DaemonSet](t, b)
	pod := ds.Spec.Template
	checkSelects(t, "DaemonSet selector", ds.Spec.Selector, pod.Labels)
	checkNodeLocal(t, b, ds, clusterIP, upstream)
	checkBuiltIn(t, b)
	checkPod(t, b, pod)
	checkRBAC(t, b, pod, corefileOf(t, b, pod))
	return pod
}

// checkNamespaces: every namespaced object of b is in kube-system, with kube-dns.
func checkNamespaces(t *testing.T, b *bundle) {
	t.Helper()
	for _, o := range b.objs {
		if m, ok := o.(metav1.Object); ok && m.GetNamespace() != "" && m.GetNamespace() != "kube-system" {
			t.Errorf("%s: %T %s: namespace %q, want kube-system", b.name, o, m.GetName(), m.GetNamespace())
		}
	}
}

func checkSelects(t *testing.T, what string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if s.Empty() || !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s %s does not select the pod template's labels %v", what, s, podLabels)
	}
}

// checkPod checks what both variants share: hardening, probes on the Corefile's health and ready
// listeners, resources, and the ServiceAccount.
func checkPod(t *testing.T, b *bundle, pod corev1.PodTemplateSpec) {
	t.Helper()
	spec := pod.Spec
	corefile := corefileOf(t, b, pod)
	if spec.SecurityContext == nil || spec.SecurityContext.SeccompProfile == nil || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("Pod: want seccompProfile RuntimeDefault")
	}
	if spec.DNSPolicy != corev1.DNSDefault {
		t.Errorf("Pod: dnsPolicy %q, want Default (the node's resolv.conf: forward's upstreams and node_search)", spec.DNSPolicy)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("Pod: %d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("Container: imagePullPolicy %q, want IfNotPresent", c.ImagePullPolicy)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("Container: want readOnlyRootFilesystem")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("Container: want allowPrivilegeEscalation false")
	}
	if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Error("Container: want capabilities drop [ALL]")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("Container: no %s request", r)
		}
	}

	// Probes: the kubelet must reach the health and ready plugins where the Corefile puts them.
	for _, p := range []struct {
		name, directive, path string
		probe                 *corev1.Probe
	}{
		{"livenessProbe", "health", "/health", c.LivenessProbe},
		{"readinessProbe", "ready", "/ready", c.ReadinessProbe},
	} {
		host, port := corefileListener(t, corefile, p.directive)
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe of %s", p.name, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || g.Port != intstr.FromInt32(int32(port)) {
			t.Errorf("%s: %s on port %s, want %s on %d (the Corefile's %s)", p.name, g.Path, g.Port.String(), p.path, port, p.directive)
		}
		if host == "0.0.0.0" || host == "::" {
			host = ""
		}
		if g.Host != host {
			t.Errorf("%s: host %q, want %q: the Corefile's %s listens there", p.name, g.Host, host, p.directive)
		}
	}

	// The ServiceAccount exists in the directory.
	var sa *corev1.ServiceAccount
	for _, s := range objectsOf[*corev1.ServiceAccount](b) {
		if s.Name == spec.ServiceAccountName {
			sa = s
		}
	}
	if sa == nil {
		t.Errorf("Pod: ServiceAccount %q is not in %s", spec.ServiceAccountName, b.name)
	}
}

// checkNodeLocal checks the DaemonSet's node-level properties. clusterIP is what the Corefile
// must bind beside the link-local address in transparent mode ("" for link-local mode), upstream
// the Service of the kube-dns pods the server forwards to, which must be among b's.
func checkNodeLocal(t *testing.T, b *bundle, ds *appsv1.DaemonSet, clusterIP, upstream string) {
	t.Helper()
	corefile := checkNodeLocalDaemonSet(t, b, ds)
	spec := ds.Spec.Template.Spec

	// Transparent mode: the link-local address and the kube-dns ClusterIP, set up by nodelocal;
	// health and ready on the link-local address, its health port's probes out of conntrack.
	binds := directiveArgs(corefile, "bind")
	want := []string{"the link-local address"}
	if clusterIP != "" {
		want = append(want, clusterIP)
	}
	if len(binds) != 1 || len(binds[0]) != len(want) || (clusterIP != "" && binds[0][1] != clusterIP) {
		t.Fatalf("DaemonSet Corefile: want one bind with %s, got %v", strings.Join(want, " and "), binds)
	}
	ip := net.ParseIP(binds[0][0])
	if ip == nil || !ip.IsLinkLocalUnicast() {
		t.Errorf("DaemonSet Corefile: bind %v, want a link-local address first", binds[0])
	}
	_, healthPort := corefileListener(t, corefile, "health")
	for _, d := range []string{"health", "ready"} {
		if host, _ := corefileListener(t, corefile, d); host != binds[0][0] {
			t.Errorf("DaemonSet Corefile: %s on %q, want the bind address %s", d, host, binds[0][0])
		}
	}
	if nl := directiveArgs(corefile, "nodelocal"); len(nl) != 1 || len(nl[0]) != 0 {
		t.Errorf("DaemonSet Corefile: want nodelocal, once, without zones, got %v", nl)
	}
	if hp := directiveArgs(corefile, "health_port"); len(hp) != 1 || hp[0][0] != strconv.Itoa(healthPort) {
		t.Errorf("DaemonSet Corefile: want nodelocal's health_port %d, the health plugin's, got %v", healthPort, hp)
	}
	// Its upstream is kube-dns-upstream, a second Service of the kube-dns pods: the ClusterIP it
	// binds leads to itself. The kubelet gives the pod its address in the environment.
	hostVar := "{$" + strings.ToUpper(strings.ReplaceAll(upstream, "-", "_")) + "_SERVICE_HOST}"
	if fw := directiveArgs(corefile, "forward"); len(fw) != 1 || !slices.Equal(fw[0], []string{".", hostVar}) {
		t.Errorf("DaemonSet Corefile: want forward . %s, got %v", hostVar, fw)
	}
	found := false
	for _, svc := range objectsOf[*corev1.Service](b) {
		if svc.Name != upstream {
			continue
		}
		found = svc.Namespace == "kube-system" && maps.Equal(svc.Spec.Selector, map[string]string{"k8s-app": "kube-dns"}) && len(svc.Spec.Ports) == 2
		for _, p := range svc.Spec.Ports {
			found = found && p.Port == 53 && p.TargetPort.IntValue() == 53
		}
	}
	if !found {
		t.Errorf("%s: want Service kube-system/%s selecting k8s-app: kube-dns on port 53, UDP and TCP", b.name, upstream)
	}

	// No API access: no kubernetes plugin, no token, no RBAC.
	if len(directiveArgs(corefile, "kubernetes")) > 0 {
		t.Error("DaemonSet Corefile: uses the kubernetes plugin, but the node-local variant has no RBAC")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("DaemonSet: want automountServiceAccountToken false")
	}
	for _, sa := range objectsOf[*corev1.ServiceAccount](b) {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s: want automountServiceAccountToken false", sa.Name)
		}
	}
	if n := len(objectsOf[*rbacv1.ClusterRole](b)) + len(objectsOf[*rbacv1.Role](b)); n > 0 {
		t.Errorf("%s: %d roles, want none", b.name, n)
	}
	// The ClusterIPs come from the service-link environment.
	if strings.Contains(corefile, "_SERVICE_HOST}") && spec.EnableServiceLinks != nil && !*spec.EnableServiceLinks {
		t.Error("DaemonSet: the Corefile reads Service addresses from the environment, but service links are off")
	}
}

// checkNodeLocalDaemonSet checks what every node-local DaemonSet must have, in any mode, and
// returns its Corefile: hostNetwork, the capabilities, the rollout, the node name.
func checkNodeLocalDaemonSet(t *testing.T, b *bundle, ds *appsv1.DaemonSet) string {
	t.Helper()
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	corefile := corefileOf(t, b, ds.Spec.Template)
	if !spec.HostNetwork {
		t.Error("DaemonSet: want hostNetwork: conntrack statistics are per network namespace, and the race is in the node's")
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("DaemonSet: priorityClassName %q, want system-node-critical", spec.PriorityClassName)
	}
	tolerateAll := false
	for _, tol := range spec.Tolerations {
		tolerateAll = tolerateAll || (tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == "")
	}
	if !tolerateAll {
		t.Errorf("DaemonSet: want a toleration of every taint (operator Exists, no key), got %v", spec.Tolerations)
	}
	// Capabilities: NET_ADMIN for the netlink conntrack reader, NET_BIND_SERVICE for :53, and
	// root, because Kubernetes gives a non-root process no added capability (see the manifest).
	sc := c.SecurityContext
	if caps := sc.Capabilities.Add; !slices.Equal(caps, []corev1.Capability{"NET_ADMIN", "NET_BIND_SERVICE"}) {
		t.Errorf("DaemonSet: capabilities add %v, want exactly [NET_ADMIN NET_BIND_SERVICE]", caps)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.RunAsNonRoot == nil || *sc.RunAsNonRoot {
		t.Error("DaemonSet: want runAsUser 0 and runAsNonRoot false: as a non-root user the added NET_ADMIN never reaches the process")
	}
	if len(directiveArgs(corefile, "raceguard")) != 1 || strings.Contains(corefile, "conntrack off") || strings.Contains(corefile, "conntrack procfs") {
		t.Error("DaemonSet Corefile: want raceguard with the netlink conntrack reader the NET_ADMIN capability is for")
	}
	nodeName := false
	for _, e := range c.Env {
		nodeName = nodeName || (e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName")
	}
	if !nodeName {
		t.Error("DaemonSet: want NODE_NAME from the downward API (fieldRef spec.nodeName), raceguard's node label")
	}

	// Rollout: the new pod starts beside the old one, sharing its sockets (SO_REUSEPORT).
	u := ds.Spec.UpdateStrategy
	if u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil ||
		u.RollingUpdate.MaxUnavailable == nil || u.RollingUpdate.MaxUnavailable.String() != "0" ||
		u.RollingUpdate.MaxSurge == nil || u.RollingUpdate.MaxSurge.String() == "0" {
		t.Errorf("DaemonSet: want a RollingUpdate with maxUnavailable 0 and a maxSurge, got %+v", u.RollingUpdate)
	}
	if len(c.Ports) > 0 {
		t.Error("DaemonSet: declares container ports, which hostNetwork turns into hostPorts: the surge pod would never be scheduled")
	}

	return corefile
}

// checkObserveBundle runs every check of the observe-only variant on b (deploy/node-local-observe,
// or the chart rendered with observe=true) and returns the pod template: the node-local DaemonSet,
// under the transparent variant's name, whose Corefile binds one link-local address of its own,
// has nodelocal with capture off, forwards to the kube-dns ClusterIP, and needs no upstream
// Service.
func checkObserveBundle(t *testing.T, b *bundle) corev1.PodTemplateSpec {
	t.Helper()
	checkNamespaces(t, b)
	ds := oneOf[*appsv1.DaemonSet](t, b)
	pod := ds.Spec.Template
	checkSelects(t, "DaemonSet selector", ds.Spec.Selector, pod.Labels)
	corefile := checkNodeLocalDaemonSet(t, b, ds)
	checkBuiltIn(t, b)
	checkPod(t, b, pod)
	checkRBAC(t, b, pod, corefile)
	if !strings.HasSuffix(ds.Name, "-node-local") {
		t.Errorf("DaemonSet %s: want the transparent variant's name, so that applying one replaces the other", ds.Name)
	}
	binds := directiveArgs(corefile, "bind")
	if len(binds) != 1 || len(binds[0]) != 1 {
		t.Fatalf("Observe Corefile: want one bind with one address, got %v", binds)
	}
	ip := net.ParseIP(binds[0][0])
	if ip == nil || !ip.IsLinkLocalUnicast() || binds[0][0] == "169.254.20.10" {
		t.Errorf("Observe Corefile: bind %v, want a link-local address of its own, not NodeLocal DNSCache's 169.254.20.10", binds[0])
	}
	for _, d := range []string{"health", "ready"} {
		if host, _ := corefileListener(t, corefile, d); host != binds[0][0] {
			t.Errorf("Observe Corefile: %s on %q, want the bind address %s", d, host, binds[0][0])
		}
	}
	if capture := directiveArgs(corefile, "capture"); len(directiveArgs(corefile, "nodelocal")) != 1 || len(capture) != 1 || !slices.Equal(capture[0], []string{"off"}) {
		t.Errorf("Observe Corefile: want nodelocal with capture off, got %v", capture)
	}
	if fw := directiveArgs(corefile, "forward"); len(fw) != 1 || !slices.Equal(fw[0], []string{".", "{$KUBE_DNS_SERVICE_HOST}"}) {
		t.Errorf("Observe Corefile: want forward . {$KUBE_DNS_SERVICE_HOST}, the kube-dns ClusterIP, got %v", fw)
	}
	for _, svc := range objectsOf[*corev1.Service](b) {
		if len(svc.Spec.Selector) > 0 && svc.Spec.Selector["k8s-app"] == "kube-dns" {
			t.Errorf("%s: Service %s selects kube-dns's pods: observe-only needs no upstream Service", b.name, svc.Name)
		}
	}
	for _, cm := range objectsOf[*corev1.ConfigMap](b) {
		if cm.Name == ds.Name {
			t.Errorf("ConfigMap %s: the transparent variant's name; a switch would reload the running pods' Corefile under them", cm.Name)
		}
	}
	return pod
}

// checkCluster checks the kube-dns replacement.
func checkCluster(t *testing.T, b *bundle, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template
	spec := pod.Spec
	c := spec.Containers[0]
	corefile := corefileOf(t, b, pod)

	if d.Name != "coredns" || d.Spec.Selector.MatchLabels["k8s-app"] != "kube-dns" || pod.Labels["k8s-app"] != "kube-dns" {
		t.Error("Deployment: want kubeadm's name (coredns) and selector (k8s-app: kube-dns), to replace it in place")
	}
	if spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("Deployment: priorityClassName %q, want system-cluster-critical", spec.PriorityClassName)
	}
	if spec.HostNetwork {
		t.Error("Deployment: hostNetwork, want the pod network")
	}
	sc := c.SecurityContext
	if sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("Deployment: want runAsUser 65532 (the image's user) and runAsNonRoot")
	}
	if caps := sc.Capabilities.Add; !slices.Equal(caps, []corev1.Capability{"NET_BIND_SERVICE"}) {
		t.Errorf("Deployment: capabilities add %v, want only NET_BIND_SERVICE", caps)
	}
	if r := d.Spec.Strategy.RollingUpdate; r == nil || r.MaxUnavailable == nil || r.MaxUnavailable.String() != "0" {
		t.Error("Deployment: want a rolling update with maxUnavailable 0")
	}
	a := spec.Affinity
	if a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Error("Deployment: want a preferred pod anti-affinity (required would block the surge pod on small clusters)")
	} else {
		term := a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
		checkSelects(t, "anti-affinity", term.LabelSelector, pod.Labels)
		if term.TopologyKey != "kubernetes.io/hostname" {
			t.Errorf("Deployment: anti-affinity topology %q, want kubernetes.io/hostname", term.TopologyKey)
		}
	}
	pdb := oneOf[*policyv1.PodDisruptionBudget](t, b)
	checkSelects(t, "PodDisruptionBudget selector", pdb.Spec.Selector, pod.Labels)

	// The kube-dns Service: 10.96.0.10, DNS over UDP and TCP to the pods.
	var svc *corev1.Service
	for _, s := range objectsOf[*corev1.Service](b) {
		if s.Name == "kube-dns" {
			svc = s
		}
	}
	if svc == nil {
		t.Fatal("deploy/cluster: no kube-dns Service")
	}
	if svc.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("kube-dns Service: clusterIP %s, want 10.96.0.10", svc.Spec.ClusterIP)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("kube-dns Service: selector %v does not select the pods", svc.Spec.Selector)
	}
	for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
		ok := false
		for _, p := range svc.Spec.Ports {
			ok = ok || (p.Protocol == proto && p.Port == 53 && p.TargetPort.IntValue() == 53)
		}
		if !ok {
			t.Errorf("kube-dns Service: no port 53/%s", proto)
		}
	}
	// The kube-dns Corefile with raceguard and collapse.
	for _, d := range []string{"kubernetes", "forward", "cache", "loop", "reload", "loadbalance", "errors", "raceguard", "collapse"} {
		if len(directiveArgs(corefile, d)) != 1 {
			t.Errorf("Deployment Corefile: want one %s", d)
		}
	}
	if p := directiveArgs(corefile, "prometheus"); len(p) != 1 || len(p[0]) != 1 || p[0][0] != ":9153" {
		t.Errorf("Deployment Corefile: prometheus %v, want :9153", p)
	}
	// Scraped as kube-dns is, with no ServiceMonitor of ours: kube-prometheus-stack's coreDns
	// monitor selects pods labelled k8s-app: kube-dns in kube-system on 9153 (checked above), and
	// kube-prometheus's the kube-dns Service's port named metrics.
	metrics := false
	for _, p := range svc.Spec.Ports {
		metrics = metrics || (p.Name == "metrics" && p.TargetPort.IntValue() == 9153)
	}
	if !metrics {
		t.Error("kube-dns Service: no port named metrics targeting 9153, which kube-prometheus's CoreDNS ServiceMonitor scrapes")
	}
	// That ServiceMonitor's jobLabel is app.kubernetes.io/name (the Service's name without it); its
	// CoreDNS alerts (coredns-mixin's CoreDNSDown among them) select job="kube-dns".
	if job, ok := svc.Labels["app.kubernetes.io/name"]; ok && job != "kube-dns" {
		t.Errorf("kube-dns Service: label app.kubernetes.io/name %q would make kube-prometheus's CoreDNS job %q, not kube-dns", job, job)
	}
}

// checkRBAC: only list and watch, only what the Corefile's kubernetes plugin reads, and a binding
// to the pod's ServiceAccount.
func checkRBAC(t *testing.T, b *bundle, pod corev1.PodTemplateSpec, corefile string) {
	t.Helper()
	roles := objectsOf[*rbacv1.ClusterRole](b)
	if len(directiveArgs(corefile, "kubernetes")) == 0 {
		if len(roles) > 0 {
			t.Errorf("%s: ClusterRoles without a kubernetes plugin", b.name)
		}
		return
	}
	want := map[string]bool{"services": true, "namespaces": true, "discovery.k8s.io/endpointslices": true}
	if len(directiveArgs(corefile, "pods")) > 0 && directiveArgs(corefile, "pods")[0][0] == "verified" {
		want["pods"] = true
	}
	got := map[string]bool{}
	for _, r := range roles {
		for _, rule := range r.Rules {
			for _, v := range rule.Verbs {
				if v != "list" && v != "watch" {
					t.Errorf("ClusterRole %s: verb %q, want only list and watch", r.Name, v)
				}
			}
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					if g != "" {
						res = g + "/" + res
					}
					got[res] = true
				}
			}
		}
	}
	for res := range want {
		if !got[res] {
			t.Errorf("%s: no list/watch on %s, which the kubernetes plugin reads", b.name, res)
		}
	}
	for res := range got {
		if !want[res] {
			t.Errorf("%s: access to %s, which this Corefile does not need", b.name, res)
		}
	}
	bound := false
	for _, crb := range objectsOf[*rbacv1.ClusterRoleBinding](b) {
		for _, s := range crb.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == pod.Spec.ServiceAccountName && s.Namespace == "kube-system" &&
				slices.ContainsFunc(roles, func(r *rbacv1.ClusterRole) bool { return r.Name == crb.RoleRef.Name }) {
				bound = true
			}
		}
	}
	if !bound {
		t.Errorf("%s: no ClusterRoleBinding binds the ClusterRole to ServiceAccount %s", b.name, pod.Spec.ServiceAccountName)
	}
}

// checkServiceMonitor: sm selects a Service of b whose named port reaches the
// Corefile's prometheus listener on the pods.
func checkServiceMonitor(t *testing.T, sm *serviceMonitor, b *bundle, pod corev1.PodTemplateSpec) {
	t.Helper()
	_, metricsPort := corefileListener(t, corefileOf(t, b, pod), "prometheus")
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("ServiceMonitor %s: selector: %v", sm.Name, err)
	}
	if len(sm.Spec.Endpoints) == 0 {
		t.Fatalf("ServiceMonitor %s: no endpoints", sm.Name)
	}
	for _, ep := range sm.Spec.Endpoints {
		found := false
		for _, svc := range objectsOf[*corev1.Service](b) {
			if !sel.Matches(labels.Set(svc.Labels)) || !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, svc.Namespace) {
				continue
			}
			for _, p := range svc.Spec.Ports {
				if p.Name != ep.Port {
					continue
				}
				found = true
				target := p.TargetPort
				if target.Type == intstr.String {
					// A named target port must be a container port of that name.
					for _, cp := range pod.Spec.Containers[0].Ports {
						if cp.Name == target.StrVal {
							target = intstr.FromInt32(cp.ContainerPort)
						}
					}
				}
				if target.IntValue() != metricsPort {
					t.Errorf("Service %s port %s: targets %s, want the Corefile's prometheus port %d", svc.Name, p.Name, p.TargetPort.String(), metricsPort)
				}
				if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) || len(svc.Spec.Selector) == 0 {
					t.Errorf("Service %s: selector %v does not select the pods", svc.Name, svc.Spec.Selector)
				}
			}
		}
		if !found {
			t.Errorf("ServiceMonitor %s: port %q is not a port of a Service it selects in %s", sm.Name, ep.Port, b.name)
		}
		for _, r := range append(slices.Clone(ep.Relabelings), ep.MetricRelabelings...) {
			if !slices.Contains([]string{"replace", "keep", "drop", "labeldrop", "labelkeep", "labelmap", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"}, r.Action) {
				t.Errorf("ServiceMonitor %s: relabel action %q", sm.Name, r.Action)
			}
		}
	}
}

// servable rewrites a manifest's Corefile to run on this machine: the server binds loopback
// instead of the link-local address and the ClusterIP, the server ports ephemeral (testenv.EphemeralPorts), health, ready and prometheus
// listen on the given addresses, and lameduck is cut short so that stopping a server does not take
// 10 s.
//
// The node set-up is left out: nodelocal would change this machine's addresses and nftables.
// test/labtest runs it, on a lab node (TestNodeLocal*Lab).
func servable(corefile string, listen map[string]string) string {
	c := regexp.MustCompile(`(?m)^\s*nodelocal \{\n(?:.*\n)*?\s*\}\n`).ReplaceAllString(corefile, "")
	if len(directiveArgs(c, "nodelocal")) > 0 {
		panic("servable: a nodelocal stanza is left, which would set up this machine")
	}
	c = regexp.MustCompile(`(?m)^(\s*bind) .*$`).ReplaceAllString(c, "${1} 169.254.20.10")
	c = strings.ReplaceAll(c, "169.254.20.10", "127.0.0.1")
	c = testenv.EphemeralPorts(c)
	c = regexp.MustCompile(`(?m)^(\s*lameduck)\s+\S+`).ReplaceAllString(c, "${1} 200ms")
	lines := strings.Split(c, "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if addr, ok := listen[f[0]]; ok {
			indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			lines[i] = indent + f[0] + " " + addr
			if f[len(f)-1] == "{" {
				lines[i] += " {"
			}
		}
	}
	return strings.Join(lines, "\n")
}

func exchangeA(t *testing.T, network, addr, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", network, name, err)
	}
	return r
}

func answerA(r *dns.Msg) string {
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// TestDeployCorefiles starts the two ConfigMaps' Corefiles in-process, chained as in a cluster:
// the cluster Corefile's kubernetes plugin reads a fake API server, and the node-local Corefile
// forwards to it through KUBE_DNS_UPSTREAM_SERVICE_HOST, the variable the kubelet sets from the
// kube-dns-upstream Service. It runs in a child process because of the kubernetes plugin's globals
// (testenv.Isolated).
func TestDeployCorefiles(t *testing.T) {
	if !testenv.Isolated(t) {
		return
	}
	cluster := loadBundle(t, "cluster")
	nodeLocal := loadBundle(t, "node-local")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := kubeapi.Serve(ln, kubeapi.Sample())
	t.Cleanup(api.Close)
	kubeconfig, err := api.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	// kube-dns: the cluster Corefile, with the fake API's kubeconfig.
	health, ready := testenv.FreePort(t), testenv.FreePort(t)
	corefile := servable(corefileOf(t, cluster, oneOf[*appsv1.Deployment](t, cluster).Spec.Template),
		map[string]string{"health": health, "ready": ready, "prometheus": "127.0.0.1:0"})
	corefile = regexp.MustCompile(`(?m)^(\s*)(kubernetes .*\{)$`).ReplaceAllString(corefile, "${1}${2}\n${1}    kubeconfig "+kubeconfig)
	i, udp, tcp, err := testenv.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("Cluster Corefile did not start: %v\n%s", err, corefile)
	}
	t.Cleanup(func() { testenv.Stop(i) })
	for deadline := time.Now().Add(10 * time.Second); answerA(exchangeA(t, "udp", udp, "kubernetes.default.svc.cluster.local.")) != "10.96.0.1"; {
		if time.Now().After(deadline) {
			t.Fatal("Cluster Corefile: kubernetes.default.svc.cluster.local never resolved to 10.96.0.1")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := answerA(exchangeA(t, "tcp", tcp, "api.shop.svc.cluster.local.")); got != "10.96.40.2" {
		t.Errorf("Cluster Corefile over TCP: api.shop.svc.cluster.local A %q, want 10.96.40.2", got)
	}
	for _, u := range []string{"http://" + health + "/health", "http://" + ready + "/ready"} {
		if body := testenv.HTTPGet(t, u); body != "OK" {
			t.Errorf("Cluster Corefile: %s answered %q, want OK", u, body)
		}
	}

	// The node-local Corefile, forwarding to the kube-dns above.
	t.Setenv("KUBE_DNS_UPSTREAM_SERVICE_HOST", udp)
	health, ready = testenv.FreePort(t), testenv.FreePort(t)
	corefile = servable(corefileOf(t, nodeLocal, oneOf[*appsv1.DaemonSet](t, nodeLocal).Spec.Template),
		map[string]string{"health": health, "ready": ready, "prometheus": "127.0.0.1:0"})
	j, nudp, _, err := testenv.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("Node-local Corefile did not start: %v\n%s", err, corefile)
	}
	t.Cleanup(func() { testenv.Stop(j) })
	if got := answerA(exchangeA(t, "udp", nudp, "kubernetes.default.svc.cluster.local.")); got != "10.96.0.1" {
		t.Errorf("Node-local Corefile: kubernetes.default.svc.cluster.local A %q, want 10.96.0.1 from kube-dns", got)
	}
	// A pod in default looking up api.shop: its first try is completed, on the node.
	r := exchangeA(t, "udp", nudp, "api.shop.default.svc.cluster.local.")
	if len(r.Answer) != 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || r.Answer[0].(*dns.CNAME).Target != "api.shop.svc.cluster.local." || answerA(r) != "10.96.40.2" {
		t.Errorf("Node-local Corefile: expected api.shop.default.svc.cluster.local completed with a CNAME to api.shop.svc.cluster.local and 10.96.40.2, got %v", r)
	}
	for _, u := range []string{"http://" + health + "/health", "http://" + ready + "/ready"} {
		if body := testenv.HTTPGet(t, u); body != "OK" {
			t.Errorf("Node-local Corefile: %s answered %q, want OK", u, body)
		}
	}
}

// TestDeployNodeLocalSurge holds the build to the DaemonSet's rollout: with maxSurge the new pod
// starts on a node beside the old one and binds the same addresses, which only works because
// every listener (DNS, health, ready, prometheus) sets SO_REUSEPORT. Two processes of the built
// binary run the node-local Corefile on the same ports; the first stops (SIGTERM, lameduck);
// DNS, health and ready keep answering from the second.
func TestDeployNodeLocalSurge(t *testing.T) {
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.LoopbackUpstream(t)
	t.Setenv("KUBE_DNS_UPSTREAM_SERVICE_HOST", up.Addr) // inherited by the processes

	b := loadBundle(t, "node-local")
	dnsAddr := "127.0.0.1:" + testenv.FreeUDPTCPPort(t)
	health, ready, metrics := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	corefile := servable(corefileOf(t, b, oneOf[*appsv1.DaemonSet](t, b).Spec.Template),
		map[string]string{"health": health, "ready": ready, "prometheus": metrics})
	_, port, _ := net.SplitHostPort(dnsAddr)
	corefile = strings.Replace(corefile, ".:0 {", ".:"+port+" {", 1)

	dir := t.TempDir()
	old, err := lab.StartProcess("", bin, dir, "old", corefile, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Stop()
	surge, err := lab.StartProcess("", bin, dir, "surge", corefile, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer surge.Stop()
	// The probe may have been answered by the old process: wait for the surge one's banner.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(surge.Log(), "CoreDNS-"); {
		if syscall.Kill(surge.Pid(), 0) != nil || time.Now().After(deadline) {
			t.Fatalf("The surge process did not start beside the old one:\n%s", surge.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}

	old.Stop()
	if strings.Contains(old.Log(), "address already in use") || strings.Contains(surge.Log(), "address already in use") {
		t.Fatalf("A listener without SO_REUSEPORT:\nold:\n%s\nsurge:\n%s", old.Log(), surge.Log())
	}
	for n := range 20 {
		m := new(dns.Msg).SetQuestion("example.org.", dns.TypeA)
		r, err := lab.Exchange("", "udp", dnsAddr, m, 2*time.Second)
		if err != nil || answerA(r) != "192.0.2.10" {
			t.Fatalf("Query %d after the old process stopped: %v %v\nsurge log:\n%s", n, r, err, surge.Log())
		}
	}
	for _, u := range []string{"http://" + health + "/health", "http://" + ready + "/ready"} {
		if body := testenv.HTTPGet(t, u); body != "OK" {
			t.Errorf("%s answered %q after the old process stopped, want OK", u, body)
		}
	}
}

package artifacts

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// What every test of manifests shares: deploy/'s files and the chart's renderings are decoded
// strictly into the official Go types (a bundle), and read with the helpers below: the objects of
// a kind, a pod template's Corefile and its directives, the Makefile's image.

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

package artifacts

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

// helmTool is the helm the tests lint and render charts with, built from its Go module into the
// checkout's .build/bin as kustomize is (helm is not a Debian package). The flags are those of
// helm's own Makefile for a release: its version, and the Kubernetes version its client-go
// (v0.37) stands for, which `helm template` and `helm lint` assume without a cluster (a plain
// go install would assume 1.20).
var helmTool = &goTool{
	module: "helm.sh/helm/v3/cmd/helm@v3.22.0",
	ldflags: "-X helm.sh/helm/v3/internal/version.version=v3.22.0" +
		" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37" +
		" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
}

// helm runs helm with args and returns its standard output; the first call installs it (goTool).
// A failure is returned with helm's standard error.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), helmTool.path(t), args...)
	// No kubeconfig, repositories or plugins of the machine's user: helm template and helm lint
	// never reach a cluster or the network.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home, "KUBECONFIG="+filepath.Join(home, "none"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// helmTemplate renders chart as release name in namespace with the values files (helm template
// -f) and the --set assignments in set, and decodes the result strictly (decodeManifests).
func helmTemplate(t *testing.T, chart, name, namespace string, valuesFiles []string, set ...string) (*bundle, error) {
	t.Helper()
	args := []string{"template", name, chart, "--namespace", namespace}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := helm(t, args...)
	if err != nil {
		return nil, err
	}
	f := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := decodeManifests(f)
	if err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	what := fmt.Sprintf("helm template %s %s -n %s", name, filepath.Base(chart), namespace)
	for _, f := range valuesFiles {
		what += " -f " + filepath.Base(f)
	}
	if len(set) > 0 {
		what += " --set " + strings.Join(set, ",")
	}
	return &bundle{name: what, objs: objs}, nil
}

// mustTemplate is helmTemplate for renderings that must work.
func mustTemplate(t *testing.T, chart, name, namespace string, valuesFiles []string, set ...string) *bundle {
	t.Helper()
	b, err := helmTemplate(t, chart, name, namespace, valuesFiles, set...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// objectKey names an object as kubectl does: kind, namespace and name.
func objectKey(o runtime.Object) string {
	m := o.(interface {
		GetNamespace() string
		GetName() string
	})
	return fmt.Sprintf("%T %s/%s", o, m.GetNamespace(), m.GetName())
}

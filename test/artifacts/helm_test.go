package artifacts

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/testenv"
	"k8s.io/apimachinery/pkg/runtime"
)

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
	out, err := testenv.Helm(t, args...)
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

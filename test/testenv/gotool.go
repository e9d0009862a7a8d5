package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
)

// GoTool is a command the tests build from its Go module at a pinned version, with go install
// into the checkout's .build/bin, once per test binary: tools that are no Debian package (helm,
// kustomize) come from the Go module proxy, as the module's own dependencies do, and never
// enter go.mod.
type GoTool struct {
	Module  string // path@version of the command's package
	Ldflags string // go install -ldflags, if any

	once sync.Once
	bin  string
	err  error
}

// Path returns the tool's executable, installing it on the first call.
func (g *GoTool) Path(t testing.TB) string {
	t.Helper()
	g.once.Do(func() {
		dir, err := lab.RepoPath(".build/bin")
		if err != nil {
			g.err = err
			return
		}
		args := []string{"install"}
		if g.Ldflags != "" {
			args = append(args, "-ldflags", g.Ldflags)
		}
		cmd := exec.Command("go", append(args, g.Module)...)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			g.err = fmt.Errorf("go install %s: %v\n%s", g.Module, err, out)
			return
		}
		g.bin = filepath.Join(dir, commandName(g.Module))
	})
	if g.err != nil {
		t.Fatal(g.err)
	}
	return g.bin
}

// commandName is the name go install gives the command of module (path@version): the last
// element of its path, or the one before a major version suffix (kustomize/v5 -> kustomize).
func commandName(module string) string {
	p, _, _ := strings.Cut(module, "@")
	name := path.Base(p)
	if v := strings.TrimPrefix(name, "v"); v != name && v != "" && strings.Trim(v, "0123456789") == "" {
		name = path.Base(path.Dir(p))
	}
	return name
}

// HelmTool is the helm the tests lint and render charts with, built from its Go module into the
// checkout's .build/bin as kustomize is (helm is not a Debian package). The flags are those of
// helm's own Makefile for a release: its version, and the Kubernetes version its client-go
// (v0.37) stands for, which `helm template` and `helm lint` assume without a cluster (a plain
// go install would assume 1.20).
var HelmTool = &GoTool{
	Module: "helm.sh/helm/v3/cmd/helm@v3.22.0",
	Ldflags: "-X helm.sh/helm/v3/internal/version.version=v3.22.0" +
		" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37" +
		" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
}

// Helm runs helm with args and returns its standard output; the first call installs it (GoTool).
// A failure is returned with helm's standard error.
func Helm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), HelmTool.Path(t), args...)
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

package artifacts

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

// goTool is a command the tests build from its Go module at a pinned version, with go install
// into the checkout's .build/bin, once per test binary: tools that are no Debian package (helm,
// kustomize) come from the Go module proxy, as the module's own dependencies do, and never
// enter go.mod.
type goTool struct {
	module  string // path@version of the command's package
	ldflags string // go install -ldflags, if any

	once sync.Once
	bin  string
	err  error
}

// path returns the tool's executable, installing it on the first call.
func (g *goTool) path(t *testing.T) string {
	t.Helper()
	g.once.Do(func() {
		dir, err := lab.RepoPath(".build/bin")
		if err != nil {
			g.err = err
			return
		}
		args := []string{"install"}
		if g.ldflags != "" {
			args = append(args, "-ldflags", g.ldflags)
		}
		cmd := exec.Command("go", append(args, g.module)...)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			g.err = fmt.Errorf("go install %s: %v\n%s", g.module, err, out)
			return
		}
		g.bin = filepath.Join(dir, commandName(g.module))
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

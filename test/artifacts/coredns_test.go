package artifacts

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
)

// corednsSource returns the version of CoreDNS this module requires (go.mod) and the directory
// of that version's source in the module cache, downloading it if it is not there yet.
func corednsSource(t *testing.T) (version, dir string) {
	t.Helper()
	root, err := lab.RepoPath("")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", "github.com/coredns/coredns")
	cmd.Dir = root
	out, err := cmd.Output()
	var m struct{ Version, Dir, Error string }
	if jerr := json.Unmarshal(out, &m); err != nil || jerr != nil || m.Error != "" || m.Dir == "" {
		t.Fatalf("go mod download github.com/coredns/coredns: %v %v %s\n%s", err, jerr, m.Error, out)
	}
	return m.Version, m.Dir
}

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestReadme starts every ~~~ corefile block of the READMEs, and Corefile.example, so the
// documentation cannot drift from what the plugins accept. Listen addresses are moved to
// ephemeral ports so the test runs beside `make run`.
func TestReadme(t *testing.T) {
	root, err := lab.RepoPath("")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root) // the examples use paths relative to the repository root, as `make run` does
	readmes, _ := filepath.Glob("plugin/*/README.md")
	readmes = append([]string{"README.md"}, readmes...)
	// nodelocal's examples change the node they run on: they run in a network namespace of the lab
	// (test/labtest TestNodeLocalReadmeLab), never on the test machine. Their sections are checked.
	nodelocal := filepath.Join("plugin", "nodelocal", "README.md")

	caddy.Quiet, dnsserver.Quiet = true, true
	defer func(p string) { dnsserver.Port = p }(dnsserver.Port)
	dnsserver.Port = "0"

	for _, readme := range readmes {
		if err := sectionsFromReadme(readme); err != nil {
			t.Error(err)
		}
		if readme == nodelocal {
			continue
		}
		blocks, err := testenv.CorefilesFromReadme(readme)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range blocks {
			t.Run(fmt.Sprintf("%s#%d", readme, i), func(t *testing.T) { startCorefile(t, b) })
		}
	}
	example, err := os.ReadFile("Corefile.example")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Corefile.example", func(t *testing.T) { startCorefile(t, string(example)) })
}

func startCorefile(t *testing.T, corefile string) {
	t.Helper()
	i, err := testenv.CoreDNSServer(testenv.EphemeralPorts(corefile))
	if err != nil {
		t.Fatalf("Failed to start:\n%s\nerror: %v", corefile, err)
	}
	i.Stop()
	i.ShutdownCallbacks()
}

// sectionsFromReadme checks that a README has CoreDNS's mandatory sections in order: Name,
// Description, Syntax and Examples; and no "Also See".
func sectionsFromReadme(readme string) error {
	f, err := os.Open(readme)
	if err != nil {
		return err
	}
	defer f.Close()

	want := []string{"## Name", "## Description", "## Syntax", "## Examples"}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "## Also See") {
			return fmt.Errorf("%s: use %q instead of %q", readme, "See Also", "Also See")
		}
		if len(want) > 0 && strings.HasPrefix(line, want[0]) {
			want = want[1:]
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("%s: sections incomplete or out of order, missing %v: want Name, Description, Syntax and Examples", readme, want)
	}
	return s.Err()
}

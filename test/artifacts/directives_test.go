package artifacts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/testenv"
)

// directiveNames returns the directive names of a plugin.cfg, in order.
func directiveNames(cfg string) []string {
	var out []string
	for _, line := range strings.Split(cfg, "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		out = append(out, name)
	}
	return out
}

// TestReadmeDirectives holds README.md's account of the directives' places to the code that
// places them, without building anything: the plugin.cfg that the Compilation section's own
// command makes of CoreDNS's has every directive where the tests' in-process servers put them
// (testenv.Splice, which test/e2e and test/artifacts run on) and where `make coredns` put them
// (hack/build-coredns.sh); the section's plugin.cfg excerpt is in it, run by run; and each
// bullet of the Description's directive list ("*X*, placed just before *Y*") says where X is.
func TestReadmeDirectives(t *testing.T) {
	_, src := corednsSource(t)
	orig, err := os.ReadFile(filepath.Join(src, "plugin.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	section := readmeSection(t, "Compilation")
	scripts, excerpts := fencedBlocks(section, "sh"), fencedBlocks(section, "txt")
	if len(scripts) != 1 || len(excerpts) != 1 {
		t.Fatalf("README.md Compilation: want one ~~~ sh block and one ~~~ txt block")
	}
	// The command that edits plugin.cfg: the lines up to its mv.
	script := scripts[0]
	end := strings.Index(script, "mv plugin.cfg.new plugin.cfg")
	if end < 0 {
		t.Fatal("README.md Compilation: no command that writes plugin.cfg")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plugin.cfg"), orig, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "bash", "-eu", "-c", script[:end+len("mv plugin.cfg.new plugin.cfg")])
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README.md's plugin.cfg command: %v\n%s", err, out)
	}
	edited, err := os.ReadFile(filepath.Join(dir, "plugin.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	got := directiveNames(string(edited))
	if want := testenv.Splice(directiveNames(string(orig))); !slices.Equal(got, want) {
		t.Errorf("README.md's plugin.cfg order differs from testenv.Splice's:\nREADME: %v\nSplice: %v", got, want)
	}
	if _, err := testenv.CoreDNSBinary(); err == nil { // make coredns's copy of plugin.cfg
		version, _ := corednsSource(t)
		if made, err := os.ReadFile(mustRepoPath(t, ".build/coredns-"+version+"/plugin.cfg")); err != nil || !bytes.Equal(made, edited) {
			t.Errorf("README.md's plugin.cfg differs from hack/build-coredns.sh's (.build/coredns-%s/plugin.cfg): %v", version, err)
		}
	}
	rest := "\n" + string(edited)
	for _, run := range strings.Split(excerpts[0], "...\n") {
		i := strings.Index(rest, "\n"+run)
		if i < 0 {
			t.Errorf("README.md's plugin.cfg excerpt is not in the plugin.cfg its command makes, in its order:\n%s", run)
			break
		}
		rest = rest[i+len(run):]
	}

	description := readmeSection(t, "Description")
	bullets := regexp.MustCompile(`(?m)^\* \*([a-z]+)\*, placed just (before|after) \*([a-z]+)\*`).FindAllStringSubmatch(description, -1)
	var listed []string
	for _, b := range bullets {
		name, where, anchor := b[1], b[2], b[3]
		listed = append(listed, name)
		i, j := slices.Index(got, name), slices.Index(got, anchor)
		if i < 0 || j < 0 || (where == "before" && i != j-1) || (where == "after" && i != j+1) {
			t.Errorf("README.md Description: *%s* placed just %s *%s*; plugin.cfg has %v", name, where, anchor, got[max(0, min(i, j)-1):min(len(got), max(i, j)+2)])
		}
	}
	// Every directive the module registers, and only those.
	var module []string
	for _, name := range got {
		if !slices.Contains(directiveNames(string(orig)), name) {
			module = append(module, name)
		}
	}
	slices.Sort(listed)
	slices.Sort(module)
	if !slices.Equal(listed, module) {
		t.Errorf("README.md Description lists %v, the module's directives are %v", listed, module)
	}
	if n := regexp.MustCompile(`plugin module with (\w+) directives`).FindStringSubmatch(description); n == nil || n[1] != map[int]string{1: "one", 2: "two", 3: "three", 4: "four"}[len(module)] {
		t.Errorf("README.md Description: %v, want the number of directives, %d", n, len(module))
	}
}

package artifacts

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// runbookBase is where the alerts' runbook_url annotations point: monitoring/runbooks on GitHub.
const runbookBase = "https://github.com/raceguard/raceguard/blob/main/monitoring/runbooks/"

// A runbook names a dashboard panel by its title in double quotes (the "Build" panel); other
// double quotes only appear in code (`source="netlink"`).
var (
	codeSpan = regexp.MustCompile("`[^`]*`")
	panelRef = regexp.MustCompile(`"([^"]+)"`)
)

// checkRunbooks: monitoring/runbooks has one runbook per alert and nothing else beside its
// README, which lists them all. Each is titled with its alert, says what it means, how to
// confirm it and what to do (## Meaning, ## Confirm, ## Act); its Confirm section names
// dashboard panels that exist; and the runbooks of alerts about lost packets or a node's
// server (conntrack and late-sibling series, up) say what `conntrack -S` shows.
func checkRunbooks(t *testing.T, rules ruleFile, d dashboard) {
	t.Helper()
	dir, err := lab.RepoPath("monitoring/runbooks")
	if err != nil {
		t.Fatal(err)
	}
	titles := map[string]bool{}
	for _, p := range d.panels() {
		titles[p.Title] = true
	}
	index := string(testenv.ReadRepoFile(t, "monitoring/runbooks/README.md"))
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			b, err := os.ReadFile(filepath.Join(dir, r.Alert+".md"))
			if err != nil {
				t.Errorf("Alert %s: no runbook: %v", r.Alert, err)
				continue
			}
			text := string(b)
			if !strings.HasPrefix(text, "# "+r.Alert+"\n") {
				t.Errorf("Runbook %s.md: want the title # %s", r.Alert, r.Alert)
			}
			sections := regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatch(text, -1)
			var names []string
			for _, m := range sections {
				names = append(names, m[1])
			}
			if !slices.Equal(names, []string{"Meaning", "Confirm", "Act"}) {
				t.Errorf("Runbook %s.md: sections %v, want Meaning, Confirm, Act", r.Alert, names)
				continue
			}
			confirm := text[strings.Index(text, "## Confirm"):strings.Index(text, "## Act")]
			refs := panelRef.FindAllStringSubmatch(codeSpan.ReplaceAllString(confirm, ""), -1)
			if len(refs) == 0 {
				t.Errorf("Runbook %s.md: Confirm names no dashboard panel", r.Alert)
			}
			for _, m := range refs {
				if !titles[m[1]] {
					t.Errorf("Runbook %s.md: no dashboard panel is titled %q", r.Alert, m[1])
				}
			}
			if regexp.MustCompile(`conntrack|late_siblings|\bup\b`).MatchString(r.Expr) && !strings.Contains(confirm, "`conntrack -S`") {
				t.Errorf("Runbook %s.md: Confirm does not say what `conntrack -S` on the node shows", r.Alert)
			}
			if !strings.Contains(index, "("+r.Alert+".md)") {
				t.Errorf("monitoring/runbooks/README.md does not list %s", r.Alert)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".md"); name != "README" && !slices.Contains(alerts, name) {
			t.Errorf("Runbook %s.md: no alert of that name", name)
		}
	}
}

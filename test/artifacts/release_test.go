package artifacts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/testenv"
)

// TestRelease runs hack/release.sh, as CONTRIBUTING.md says a release is cut, in a scratch git
// repository holding this checkout's script, CHANGELOG.md, README.md and the chart's Chart.yaml:
// two releases in a row, then each check that must refuse one. After each release the README's
// Compilation section must name the version where TestCompilation reads it, and the chart must
// carry it.
func TestRelease(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("Skipping: no git")
	}
	dir := t.TempDir()
	for _, d := range []string{"hack", "charts/raceguard"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.CommandContext(t.Context(), "cp", "-r", mustRepoPath(t, "charts/raceguard"), filepath.Join(dir, "charts")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	for _, f := range []string{"hack/release.sh", "CHANGELOG.md", "README.md", "charts/raceguard/Chart.yaml", "Makefile", ".gitignore"} {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(f, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, f), testenv.ReadRepoFile(t, f), mode); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.org", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	run := func(name string, args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), name, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(name string, args ...string) string {
		t.Helper()
		out, err := run(name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}
	must("git", "init", "-q", "-b", "main")
	must("git", "add", "-A")
	must("git", "commit", "-q", "-m", "Before the release")
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	unreleased := read("CHANGELOG.md")
	unreleased = unreleased[strings.Index(unreleased, "## [Unreleased]")+len("## [Unreleased]"):]
	if i := strings.Index(unreleased, "\n## ["); i >= 0 {
		unreleased = unreleased[:i]
	}
	today := time.Now().UTC().Format("2006-01-02")

	released := func(version, previous, entries string) {
		t.Helper()
		must("hack/release.sh", version)
		if got := strings.TrimSpace(must("git", "log", "-1", "--format=%s")); got != "Release "+version {
			t.Errorf("%s: commit %q, want %q", version, got, "Release "+version)
		}
		if got := strings.TrimSpace(must("git", "cat-file", "-t", version)); got != "tag" {
			t.Errorf("%s: a %s, want an annotated tag", version, got)
		}
		if must("git", "rev-list", "-1", version) != must("git", "rev-parse", "HEAD") {
			t.Errorf("%s does not tag the release commit", version)
		}
		changelog := read("CHANGELOG.md")
		number := strings.TrimPrefix(version, "v")
		if want := "## [Unreleased]\n\n## [" + number + "] - " + today + entries; !strings.Contains(changelog, want) {
			t.Errorf("%s: CHANGELOG.md does not have the Unreleased entries under %q", version, "## ["+number+"] - "+today)
		}
		link := "[" + number + "]: https://github.com/raceguard/raceguard/releases/tag/" + version
		if previous != "" {
			link = "[" + number + "]: https://github.com/raceguard/raceguard/compare/" + previous + "..." + version
		}
		if want := "[Unreleased]: https://github.com/raceguard/raceguard/compare/" + version + "...HEAD\n" + link + "\n"; !strings.Contains(changelog, want) {
			t.Errorf("%s: CHANGELOG.md's links: want\n%s", version, want)
		}
		readme := read("README.md")
		section := readme[strings.Index(readme, "\n## Compilation\n"):]
		section = section[:strings.Index(section[1:], "\n## ")+1]
		if m := goGetRE.FindStringSubmatch(section); m == nil || m[1] != version {
			t.Errorf("%s: README.md's go get line names %v", version, m)
		}
		if m := supportedRE.FindStringSubmatch(strings.Join(strings.Fields(section), " ")); m == nil || m[1] != version {
			t.Errorf("%s: README.md's supported statement names %v", version, m)
		}
		if !strings.Contains(section, "+raceguard-"+version+"`") {
			t.Errorf("%s: README.md's -version output does not name it", version)
		}
		if m := readChartMeta(t, filepath.Join(dir, "charts/raceguard")); m.Version != number || m.AppVersion != version {
			t.Errorf("%s: Chart.yaml has version %q, appVersion %q; want %q, %q", version, m.Version, m.AppVersion, number, version)
		}
	}
	released("v0.1.0", "", unreleased)

	// The artifacts of the tag (but the images, which TestImage builds with the same script).
	artifactEnv := append(env, "RELEASE_IMAGES=no", "HELM="+testenv.HelmTool.Path(t))
	artifacts := func(version string) (string, error) {
		cmd := exec.CommandContext(t.Context(), "hack/release.sh", "artifacts", version)
		cmd.Dir, cmd.Env = dir, artifactEnv
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := artifacts("v0.1.0")
	if err != nil {
		t.Fatalf("release.sh artifacts v0.1.0: %v\n%s", err, out)
	}
	t.Logf("release.sh artifacts v0.1.0:\n%s", out)
	dist := filepath.Join(dir, "dist", "v0.1.0")
	sums := exec.CommandContext(t.Context(), "sha256sum", "-c", "SHA256SUMS")
	sums.Dir = dist
	if out, err := sums.CombinedOutput(); err != nil || !strings.Contains(string(out), "raceguard-0.1.0.tgz: OK") {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}
	untar := exec.CommandContext(t.Context(), "tar", "-xzf", "raceguard-0.1.0.tgz")
	untar.Dir = dist
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	if m := readChartMeta(t, filepath.Join(dist, "raceguard")); m.Version != "0.1.0" || m.AppVersion != "v0.1.0" {
		t.Errorf("The packaged chart: version %q, appVersion %q; want 0.1.0, v0.1.0", m.Version, m.AppVersion)
	}
	if b, err := os.ReadFile(filepath.Join(dist, "raceguard", "values.yaml")); err != nil || !strings.Contains(string(b), "repository: "+makefileVar(t, "RELEASE_IMAGE")+"\n") {
		t.Errorf("The packaged chart's default image is not the release's, %s", makefileVar(t, "RELEASE_IMAGE"))
	}
	if st := strings.TrimSpace(must("git", "status", "--porcelain")); st != "" {
		t.Errorf("release.sh artifacts left the tree changed (dist/ must be ignored):\n%s", st)
	}

	refused := func(why string, args ...string) {
		t.Helper()
		out, err := run("hack/release.sh", args...)
		if err == nil {
			t.Errorf("%s: release.sh %v succeeded:\n%s", why, args, out)
		} else {
			t.Logf("%s: %s", why, strings.TrimSpace(out))
		}
	}
	refused("nothing unreleased", "v0.2.0")
	refused("an existing tag", "v0.1.0")
	refused("not a version", "0.2.0")

	// A fix, then the next release.
	entry := "\n\n### Fixed\n\n- A fix."
	if err := os.WriteFile(filepath.Join(dir, "CHANGELOG.md"), []byte(strings.Replace(read("CHANGELOG.md"), "## [Unreleased]", "## [Unreleased]"+entry, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	refused("uncommitted changes", "v0.1.1")
	must("git", "commit", "-q", "-am", "A fix")
	refused("below the latest release", "v0.0.9")
	must("git", "checkout", "-q", "-b", "topic")
	refused("not on main", "v0.1.1")
	must("git", "checkout", "-q", "main")
	if out, err := artifacts("v0.1.0"); err == nil {
		t.Errorf("release.sh artifacts v0.1.0 on a commit after the tag succeeded:\n%s", out)
	}
	released("v0.1.1", "v0.1.0", entry)
}

package artifacts

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// The Compilation section of README.md is the way users build raceguard into CoreDNS. The test
// below runs it as it stands. Its parts:
//
//   - the statement "raceguard vX supports CoreDNS vY, built with Go Z or newer";
//   - one ~~~ sh block: the commands a user runs in a CoreDNS tree, ending with a go get of this
//     module at a version;
//   - one ~~~ txt block: plugin.cfg around the new lines (runs of lines, "..." between them).
const modulePath = "github.com/raceguard/raceguard"

var (
	supportedRE = regexp.MustCompile(`raceguard (v\S+) supports CoreDNS (v\d+\.\d+\.\d+), built with Go (\d+\.\d+) or newer`)
	goGetRE     = regexp.MustCompile(`(?m)^go get ` + regexp.QuoteMeta(modulePath) + `@(\S+)$`)
)

// readmeSection returns the text of README.md's "## name" section.
func readmeSection(t *testing.T, name string) string {
	t.Helper()
	readme := string(testenv.ReadRepoFile(t, "README.md"))
	i := strings.Index(readme, "\n## "+name+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q section", name)
	}
	s := readme[i+len(name)+5:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

// fencedBlocks returns the bodies of the ~~~ blocks of text tagged info.
func fencedBlocks(text, info string) []string {
	var out []string
	var cur strings.Builder
	in := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case !in && line == "~~~ "+info:
			in = true
			cur.Reset()
		case in && line == "~~~":
			in = false
			out = append(out, cur.String())
		case in:
			cur.WriteString(line + "\n")
		}
	}
	return out
}

// TestCompilation follows README.md's Compilation section as a user with a CoreDNS tree does,
// and checks what it states.
//
// The tree is a copy of the CoreDNS source this module requires, from the module cache (what
// `git clone --branch` of that tag checks out, minus .git). The sh block runs in it verbatim,
// with bash -eu. Its `go get` of this module at the version the block names is answered by a
// module proxy in a local directory (GOPROXY=file://...), which serves this checkout's files
// (tracked, and untracked but not ignored) as that version: the go command then does what it
// does for a user and a release on proxy.golang.org (resolve the version, download and verify
// the module zip, run MVS over its go.mod, record it in go.mod and go.sum), which a replace
// directive would skip. The environment differs from a user's only where it must or where it
// changes no result: this module is not in the public checksum database (GONOSUMDB); a module
// cache of the test's own (.build/compilation), because the version names other content at every
// commit, and no module index (GODEBUG=goindex=0: the go command indexes a module cache
// directory's packages once, trusting a version never to change); the machine's module cache as
// the first proxy for everything else, so that it runs offline once the cache is warm; and
// -trimpath (as CoreDNS's and this repository's builds), so that the build reuses what `make
// coredns` compiled. cgo is left as the user has it: the block's own CGO_ENABLED=0 makes the
// binary static, which the test checks.
//
// Then the binary must say the version in `coredns -version` and coredns_raceguard_build_info,
// list the module's directives, complete a search expansion from the bundled cluster zone, and
// the tree's plugin.cfg must hold the README's excerpt and equal the one `make coredns` built
// with.
func TestCompilation(t *testing.T) {
	section := readmeSection(t, "Compilation")
	scripts, excerpts := fencedBlocks(section, "sh"), fencedBlocks(section, "txt")
	if len(scripts) != 1 || len(excerpts) != 1 {
		t.Fatalf("README.md Compilation: want one ~~~ sh block and one ~~~ txt block, got %d and %d", len(scripts), len(excerpts))
	}
	script, excerpt := scripts[0], excerpts[0]
	supported := supportedRE.FindStringSubmatch(strings.Join(strings.Fields(section), " "))
	get := goGetRE.FindAllStringSubmatch(script, -1)
	if supported == nil || len(get) != 1 {
		t.Fatalf("README.md Compilation: want the statement %q and one `go get %s@VERSION` line", supportedRE, modulePath)
	}
	version := get[0][1]
	coreVersion, src := corednsSource(t)
	checkSupported(t, supported[1:], version, coreVersion, src)

	root, err := lab.RepoPath("")
	if err != nil {
		t.Fatal(err)
	}
	// The built binary of `make coredns` (and its plugin.cfg, in .build) first: its compiled
	// packages are what this build reuses.
	if _, err := testenv.CoreDNSBinary(); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(root, ".build", "compilation")
	modcache := filepath.Join(work, "modcache")
	if err := os.MkdirAll(modcache, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(work, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil { // one run per checkout
		t.Fatal(err)
	}
	// The version names this checkout only for this run.
	for _, old := range []string{filepath.Join(modcache, modulePath+"@"+version), filepath.Join(modcache, "cache", "download", modulePath)} {
		if err := os.RemoveAll(old); err != nil {
			t.Fatal(err)
		}
	}

	tmp := t.TempDir()
	proxy := filepath.Join(tmp, "proxy")
	serveModule(t, root, proxy, version)
	tree := filepath.Join(tmp, "coredns")
	if out, err := exec.CommandContext(t.Context(), "cp", "-r", src, tree).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if out, err := exec.CommandContext(t.Context(), "chmod", "-R", "u+w", tree).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v %s", err, out)
	}
	before := requirements(t, filepath.Join(tree, "go.mod"))

	machineProxy := "https://proxy.golang.org,direct"
	if out, err := exec.CommandContext(t.Context(), "go", "env", "GOPROXY").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		machineProxy = strings.TrimSpace(string(out))
	}
	sharedCache, err := exec.CommandContext(t.Context(), "go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "bash", "-eu", "-c", script)
	cmd.Dir = tree
	// The user's environment, where cgo is on wherever a C compiler is: the block itself must
	// make the binary static, as CoreDNS's own build does.
	env := slices.DeleteFunc(os.Environ(), func(v string) bool { return strings.HasPrefix(v, "CGO_ENABLED=") })
	cmd.Env = append(env,
		"GOPROXY=file://"+proxy+",file://"+filepath.Join(strings.TrimSpace(string(sharedCache)), "cache", "download")+","+machineProxy,
		"GONOSUMDB="+modulePath,
		"GOMODCACHE="+modcache,
		"GODEBUG=goindex=0",
		"GOFLAGS=-trimpath -modcacherw -buildvcs=false",
		"GOTOOLCHAIN=local",
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README.md Compilation block failed: %v\n%s", err, out)
	}
	t.Logf("README.md Compilation block: %s", time.Since(start).Round(time.Second))
	if want := "CoreDNS-" + strings.TrimPrefix(coreVersion, "v") + "+raceguard-" + version + "\n"; !strings.Contains(string(out), want) {
		t.Errorf("./coredns -version: want %q in\n%s", want, out)
	}

	// go get added modules; it changed no version of CoreDNS's own.
	after := requirements(t, filepath.Join(tree, "go.mod"))
	if after[modulePath] != version {
		t.Errorf("go.mod requires %s %q, want %s", modulePath, after[modulePath], version)
	}
	for m, v := range before {
		if after[m] != v {
			t.Errorf("go get changed CoreDNS's requirement %s %s to %q", m, v, after[m])
		}
	}

	// plugin.cfg: the README's excerpt, and the same as `make coredns`'s.
	cfg, err := os.ReadFile(filepath.Join(tree, "plugin.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	// The excerpt's runs of lines, between "..." lines, stand in plugin.cfg in that order.
	rest := "\n" + string(cfg)
	for _, run := range strings.Split(excerpt, "...\n") {
		i := strings.Index(rest, "\n"+run)
		if i < 0 {
			t.Errorf("plugin.cfg after the README's commands does not contain, in the README's order:\n%s", run)
			break
		}
		rest = rest[i+len(run):]
	}
	made, err := os.ReadFile(filepath.Join(root, ".build", "coredns-"+coreVersion, "plugin.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg, made) {
		t.Errorf("plugin.cfg after the README's commands differs from hack/build-coredns.sh's (.build/coredns-%s/plugin.cfg)", coreVersion)
	}

	checkStatic(t, filepath.Join(tree, "coredns"))
	runCompiled(t, root, filepath.Join(tree, "coredns"), version)
}

// checkStatic fails unless bin is a statically linked executable: no program interpreter, no
// shared library needed.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (it has a program interpreter): the README's build must be static, CGO_ENABLED=0", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v: the README's build must be static, CGO_ENABLED=0", bin, libs)
	}
}

// checkSupported checks the README's statement of supported versions against go.mod and the
// toolchain: the raceguard version is the one the block installs, the CoreDNS version the one
// this module requires and the test builds, and the Go version the go line of this module and
// of that CoreDNS, which the toolchain running the build (GOTOOLCHAIN=local) must satisfy.
func checkSupported(t *testing.T, statement []string, version, coreVersion, src string) {
	t.Helper()
	rgVersion, rgCore, rgGo := statement[0], statement[1], statement[2]
	if rgVersion != version {
		t.Errorf("README.md: supports statement names raceguard %s, the go get line %s", rgVersion, version)
	}
	if rgCore != coreVersion {
		t.Errorf("README.md: supports CoreDNS %s, go.mod requires %s", rgCore, coreVersion)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?$`)
	for _, f := range []string{filepath.Join(src, "go.mod"), ""} {
		var b []byte
		if f == "" {
			f, b = "go.mod", testenv.ReadRepoFile(t, "go.mod")
		} else {
			var err error
			if b, err = os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
		}
		if m := goLine.FindSubmatch(b); m == nil || string(m[1]) != rgGo {
			t.Errorf("README.md: supports Go %s or newer, %s says go %s", rgGo, f, m)
		}
	}
	var major, minor, wantMajor, wantMinor int
	fmt.Sscanf(strings.TrimPrefix(runtime.Version(), "go"), "%d.%d", &major, &minor)
	fmt.Sscanf(rgGo, "%d.%d", &wantMajor, &wantMinor)
	if major < wantMajor || (major == wantMajor && minor < wantMinor) {
		t.Errorf("This test runs with %s, older than the Go %s the README supports", runtime.Version(), rgGo)
	}
	t.Logf("README.md: raceguard %s, CoreDNS %s, Go %s or newer; building with %s", rgVersion, rgCore, rgGo, runtime.Version())

	// A release is a vMAJOR.MINOR.PATCH tag; the README names the newest or the next one.
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(version) {
		t.Errorf("README.md: go get names %s, want a release version vX.Y.Z", version)
	}
	root, _ := lab.RepoPath("")
	if out, err := exec.CommandContext(t.Context(), "git", "-C", root, "tag", "--list", "v[0-9]*", "--sort=-v:refname").Output(); err == nil {
		if tags := strings.Fields(string(out)); len(tags) > 0 && semverLess(version, tags[0]) {
			t.Errorf("README.md names %s, older than the latest tag %s: the release did not update it (hack/release.sh does)", version, tags[0])
		}
	}
}

// semverLess reports whether release version a (vX.Y.Z) is lower than b.
func semverLess(a, b string) bool {
	var x, y [3]int
	fmt.Sscanf(a, "v%d.%d.%d", &x[0], &x[1], &x[2])
	fmt.Sscanf(b, "v%d.%d.%d", &y[0], &y[1], &y[2])
	return slices.Compare(x[:], y[:]) < 0
}

// requirements returns the module requirements of a go.mod file, path to version.
func requirements(t *testing.T, gomod string) map[string]string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "mod", "edit", "-json", gomod).Output()
	if err != nil {
		t.Fatalf("go mod edit -json %s: %v", gomod, err)
	}
	var m struct {
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	req := map[string]string{}
	for _, r := range m.Require {
		req[r.Path] = r.Version
	}
	return req
}

// serveModule lays out a GOPROXY directory (the module proxy protocol over file://) serving the
// checkout at root as modulePath@version: the list, info, mod and zip files. The zip holds the
// files a commit of the working tree would hold (tracked, and untracked but not ignored), under
// modulePath@version/, nested modules left out, as the go command and proxy.golang.org make
// module zips; the go command checks it as it would a download (paths, sizes, go.mod).
func serveModule(t *testing.T, root, proxy, version string) {
	t.Helper()
	dir := filepath.Join(proxy, modulePath, "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ls, err := exec.CommandContext(t.Context(), "git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	files := strings.Split(strings.TrimRight(string(ls), "\x00"), "\x00")
	// A directory with a go.mod of its own is another module (test/cluster/kube): module zips
	// leave it out, as golang.org/x/mod/zip does, and the go command refuses a zip that has it.
	var nested []string
	for _, f := range files {
		if path.Base(f) == "go.mod" && path.Dir(f) != "." {
			nested = append(nested, path.Dir(f)+"/")
		}
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for _, f := range files {
		if slices.ContainsFunc(nested, func(d string) bool { return strings.HasPrefix(f, d) }) {
			continue
		}
		st, err := os.Lstat(filepath.Join(root, f))
		if err != nil || !st.Mode().IsRegular() { // deleted in the working tree, or not a file
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		w, err := z.Create(modulePath + "@" + version + "/" + filepath.ToSlash(f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(struct{ Version, Time string }{version, time.Now().UTC().Format(time.RFC3339)})
	for name, body := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": info,
		version + ".mod":  testenv.ReadRepoFile(t, "go.mod"),
		version + ".zip":  buf.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Module proxy: %s@%s, a %d kB zip", modulePath, version, buf.Len()/1024)
}

// runCompiled runs the binary built from the README's commands: the directives are compiled in,
// it completes a search expansion from the bundled cluster zone, and it exports its version.
func runCompiled(t *testing.T, root, bin, version string) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), bin, "-plugins").Output()
	if err != nil {
		t.Fatalf("%s -plugins: %v", bin, err)
	}
	for _, d := range []string{"raceguard", "collapse", "nodelocal"} {
		if !slices.Contains(strings.Fields(string(out)), d) {
			t.Errorf("%s -plugins does not list %s", bin, d)
		}
	}

	dnsAddr := "127.0.0.1:" + testenv.FreeUDPTCPPort(t)
	metrics := testenv.FreePort(t)
	_, port, _ := strings.Cut(dnsAddr, ":")
	corefile := fmt.Sprintf(`cluster.local:%s {
    bind 127.0.0.1
    prometheus %s
    raceguard
    cache 30
    collapse
    file %s
}
`, port, metrics, filepath.Join(root, "zones", "cluster.local.db"))
	p, err := lab.StartProcess("", bin, t.TempDir(), "compiled", corefile, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	// A pod in namespace default looking up kubernetes.default: its first try is completed.
	m := new(dns.Msg).SetQuestion("kubernetes.default.default.svc.cluster.local.", dns.TypeA)
	r, err := lab.Exchange("", "udp", dnsAddr, m, 5*time.Second)
	if err != nil || len(r.Answer) != 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || answerA(r) != "10.96.0.1" {
		t.Errorf("kubernetes.default.default.svc.cluster.local A: want a CNAME to kubernetes.default.svc.cluster.local and 10.96.0.1, got %v %v\n%s", r, err, p.Log())
	}
	text, err := lab.ScrapeURL("", "http://"+metrics+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range lab.ParseMetrics(text) {
		if s.Name == "coredns_raceguard_build_info" {
			found = true
			if s.Labels["version"] != version || s.Labels["goversion"] != goVersionOf(t, bin) || s.Value != 1 {
				t.Errorf("coredns_raceguard_build_info %v %v: want version %s, the Go version of the build, value 1", s.Labels, s.Value, version)
			}
		}
	}
	if !found {
		t.Error("No coredns_raceguard_build_info in the scrape")
	}
}

// goVersionOf returns the Go version a binary was built with (`go version BIN`).
func goVersionOf(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "version", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	return f[len(f)-1]
}

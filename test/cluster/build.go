package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/raceguard/raceguard/test/lab"
)

// kubeModule is the nested module that builds the cluster's programs (kube/go.mod): k8s.io/kubernetes
// as a dependency, with every k8s.io staging module replaced by its published version, so the
// main module's go.mod stays free of replace directives and of Kubernetes itself.
const kubeModule = "test/cluster/kube"

// kubePackages are the programs built from it, by the name of their executable (the last
// element of the package's path, which go build names it after).
var kubePackages = map[string]string{
	"etcd":           "./etcd",
	"kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
	"endpointslice":  "./endpointslice",
	"kube-proxy":     "k8s.io/kubernetes/cmd/kube-proxy",
	"podconf":        "./podconf",
}

// Binaries are the paths of the built programs, by name.
type Binaries map[string]string

var (
	buildOnce sync.Once
	buildBins Binaries
	buildErr  error
)

// Build returns the cluster's programs, building them at most once per machine: into the user's
// cache directory, in a folder named for the hash of the nested module's go.mod, go.sum and
// sources, with a stamp written last. A later run (or another checkout) with the same sources finds
// the stamp and builds nothing; a changed source builds anew. An exclusive lock on the folder
// keeps two test processes from building at once. The first build downloads the modules and
// compiles Kubernetes: minutes.
func Build() (Binaries, error) {
	buildOnce.Do(func() { buildBins, buildErr = build() })
	return buildBins, buildErr
}

func build() (Binaries, error) {
	src, err := lab.RepoPath(kubeModule)
	if err != nil {
		return nil, err
	}
	key, err := sourceHash(src)
	if err != nil {
		return nil, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, "raceguard", "cluster-"+key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bins := Binaries{}
	for name := range kubePackages {
		bins[name] = filepath.Join(dir, name)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, err
	}
	stamp := filepath.Join(dir, ".built")
	if _, err := os.Stat(stamp); err == nil {
		return bins, nil
	}
	var pkgs []string
	for _, p := range kubePackages {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	start := time.Now()
	cmd := exec.Command("go", append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false -mod=readonly", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the cluster's programs (%s): %v\n%s", kubeModule, err, out)
	}
	took := fmt.Sprintf("built in %s\n", time.Since(start).Round(time.Second))
	if err := os.WriteFile(stamp, []byte(took), 0o644); err != nil {
		return nil, err
	}
	return bins, nil
}

// sourceHash hashes the Go version and the nested module's go.mod, go.sum and Go files.
func sourceHash(dir string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version())
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		if name != "go.mod" && name != "go.sum" && !strings.HasSuffix(name, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

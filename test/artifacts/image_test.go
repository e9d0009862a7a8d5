package artifacts

import (
	"context"
	"debug/elf"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// podmanGlobal and podmanRun are the podman flags that work on a machine like CI's (a VM with a
// hybrid cgroup hierarchy and without CAP_SYS_RESOURCE): runc with cgroupfs, explicit lower
// ulimits, and the host network so that the test reaches the server on loopback.
var (
	podmanGlobal = []string{"--cgroup-manager=cgroupfs", "--runtime", "runc"}
	podmanRun    = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--network", "host"}
)

// Capability bits (linux/capability.h).
const (
	capNetBindService = 10
	capNetAdmin       = 12
)

// imageTools skips t (or, with RACEGUARD_LAB=require, fails it) without root, buildah, podman,
// runc or setpriv. Root is for running the image with podman as deploy/ runs it, and for setpriv,
// with which the test builds the image as an unprivileged user.
func imageTools(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"buildah", "podman", "runc", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "the image test needs " + strings.Join(missing, ", ") + " (apt-get install buildah podman runc util-linux)"
	if os.Getenv("RACEGUARD_LAB") == "require" {
		t.Fatalf("RACEGUARD_LAB=require: %s", msg)
	}
	t.Skipf("Skipping: %s", msg)
}

func imageCommand(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func podman(ctx context.Context, args ...string) (string, error) {
	return imageCommand(ctx, "podman", append(append([]string{}, podmanGlobal...), args...)...)
}

// nobody is the user the test builds the image as: an unprivileged one, with no subordinate
// ids (buildah then maps it alone into its user namespace, as root of every file of the image).
const nobody = 65534

// buildImage runs hack/build-image.sh, as `make image` does, for linux/amd64 and linux/arm64,
// with buildah run as nobody in a storage of its own under dir (which nobody must be able to
// read), and returns the OCI archive of the manifest list it made. The script's go steps
// (cross-compiling, writing the layers) run as the test's user; they need no privilege either.
func buildImage(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	script, err := lab.RepoPath("hack/build-image.sh")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home") // nobody's: its storage, runtime and temporary files
	for _, d := range []string{filepath.Join(dir, "context"), home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(home, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(home, "image.tar")
	asNobody := fmt.Sprintf("setpriv --reuid=%d --regid=%d --clear-groups env HOME=%[3]s XDG_RUNTIME_DIR=%[3]s TMPDIR=%[3]s "+
		"buildah --storage-driver vfs --root %[3]s/storage --runroot %[3]s/run", nobody, nobody, home)
	cmd := exec.CommandContext(ctx, script)
	cmd.Env = append(os.Environ(), "IMAGE=localhost/raceguard-imagetest", "PLATFORMS=linux/amd64 linux/arm64",
		"OUT="+filepath.Join(dir, "context"), "ARCHIVE="+archive, "BUILDAH="+asNobody)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/build-image.sh: %v\n%s", err, out)
	}
	st, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hack/build-image.sh, buildah as uid %d: %s; OCI archive of both platforms %.1f MB", nobody, time.Since(start).Round(time.Second), float64(st.Size())/1e6)
	return archive
}

// privilegedPort returns a port below 1024 free on 127.0.0.1 for UDP and TCP: binding it as uid
// 65532 proves the binary's file capability.
func privilegedPort(t *testing.T) int {
	t.Helper()
	for port := 1023; port > 900; port-- {
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("No free port between 901 and 1023")
	return 0
}

// procStatus returns the fields of /proc/pid/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestImage builds the image the way `make image` does, for linux/amd64 and linux/arm64 into one
// manifest list, with buildah as an unprivileged user; checks the list, each image's
// configuration and its layer (the binary's architecture from its ELF header, its file
// capability, the files beside it); then runs the image of this machine's platform with podman
// under the two security contexts of deploy/ (the cluster Deployment's image user 65532, and the
// node-local DaemonSet's root with only NET_ADMIN and NET_BIND_SERVICE), queries it over
// loopback, and removes the containers and the image it made.
func TestImage(t *testing.T) {
	imageTools(t)
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Cross-compiling CoreDNS for the other platform takes minutes on a cold build cache.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()

	// The versions the binary reports, and the commit, are the image's labels.
	out, err := imageCommand(ctx, bin, "-version")
	if err != nil {
		t.Fatal(err)
	}
	version := regexp.MustCompile(`\+raceguard-(\S+)`).FindStringSubmatch(out)
	coreVersion := regexp.MustCompile(`CoreDNS-([0-9.]+)`).FindStringSubmatch(out)
	if version == nil || coreVersion == nil {
		t.Fatalf("%s -version: no CoreDNS version or raceguard version in %q", bin, out)
	}
	revision := "unknown"
	if root, err := lab.RepoPath(""); err == nil {
		if out, err := imageCommand(ctx, "git", "-C", root, "rev-parse", "HEAD"); err == nil {
			revision = strings.TrimSpace(out)
		}
	}

	dir, err := os.MkdirTemp("", "raceguard-imagetest-") // 0755 up to /, unlike t.TempDir's
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := buildImage(t, ctx, dir)
	images := readOCIArchive(t, archive)
	if len(images) != 2 {
		t.Fatalf("The manifest list has %d images, want linux/amd64 and linux/arm64", len(images))
	}
	for _, want := range []struct {
		arch    string
		machine elf.Machine
	}{{"amd64", elf.EM_X86_64}, {"arm64", elf.EM_AARCH64}} {
		img, ok := images["linux/"+want.arch]
		if !ok {
			t.Errorf("The manifest list has no linux/%s image: %v", want.arch, slices.Collect(maps.Keys(images)))
			continue
		}
		t.Run(want.arch, func(t *testing.T) {
			checkImageConfig(t, img.config, want.arch, map[string]string{
				"org.opencontainers.image.version":  version[1],
				"org.opencontainers.image.revision": revision,
				"io.coredns.version":                coreVersion[1],
			})
			checkImageLayer(t, img, want.machine)
		})
	}

	// Run this machine's image: podman pulls it from the archive's manifest list.
	out, err = podman(ctx, "pull", "--quiet", "oci-archive:"+archive)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if out, err := podman(cctx, "rmi", "-f", id); err != nil {
			t.Errorf("Removing %s: %v %s", id, err, out)
		}
	})
	image := id
	out, err = podman(ctx, "image", "inspect", "--format", "{{.Architecture}}", image)
	if err != nil || strings.TrimSpace(out) != runtime.GOARCH {
		t.Fatalf("podman pulled a %q image from the manifest list, want this machine's %s: %v", strings.TrimSpace(out), runtime.GOARCH, err)
	}
	// The binary in the image is the one built: it reports the same versions.
	out, err = podman(ctx, append(append([]string{"run", "--rm"}, podmanRun...), image, "-version")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "CoreDNS-"+coreVersion[1]+"+raceguard-"+version[1]+"\n") {
		t.Errorf("The image's /coredns -version said %q, want CoreDNS-%s+raceguard-%s", out, coreVersion[1], version[1])
	}

	zones, err := lab.RepoPath("zones")
	if err != nil {
		t.Fatal(err)
	}

	// Kubernetes' allowPrivilegeEscalation: false and capabilities: drop: [ALL], as deploy/ sets.
	restricted := []string{"--security-opt", "no-new-privileges", "--cap-drop", "ALL"}

	// run starts a container of the image with securityContext-like flags, serving the bundled
	// cluster zone on a port below 1024 of 127.0.0.1, checks that it answers, and returns its name,
	// its pid on the host and its metrics URL.
	run := func(t *testing.T, name string, security ...string) (container string, pid int, metricsURL string) {
		t.Helper()
		conf := t.TempDir()
		port := privilegedPort(t)
		health, ready, metrics := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
		corefile := fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    health %s
    ready %s
    prometheus %s
    raceguard
    cache 30
    collapse
    file /zones/cluster.local.db cluster.local
}
`, port, health, ready, metrics)
		if err := os.WriteFile(filepath.Join(conf, "Corefile"), []byte(corefile), 0o644); err != nil {
			t.Fatal(err)
		}
		container = fmt.Sprintf("raceguard-imagetest-%s-%d", name, os.Getpid())
		t.Cleanup(func() {
			cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer ccancel()
			if out, err := podman(cctx, "rm", "-f", "-t", "0", container); err != nil {
				t.Errorf("Removing container %s: %v %s", container, err, out)
			}
		})
		args := append([]string{"run", "-d", "--name", container}, podmanRun...)
		args = append(args, "--read-only")
		args = append(args, security...)
		args = append(args, "-v", conf+":/etc/coredns:ro", "-v", zones+":/zones:ro", image, "-conf", "/etc/coredns/Corefile")
		if _, err := podman(ctx, args...); err != nil {
			t.Fatal(err)
		}
		dnsAddr := fmt.Sprintf("127.0.0.1:%d", port)
		var r *dns.Msg
		for deadline := time.Now().Add(15 * time.Second); ; {
			m := new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
			r, err = dns.Exchange(m, dnsAddr)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || answerA(r) != "10.96.0.1" {
			logs, _ := podman(ctx, "logs", container)
			t.Fatalf("%s: kubernetes.default.svc.cluster.local A: %v %v; want 10.96.0.1\n%s", name, r, err, logs)
		}
		if r := exchangeA(t, "tcp", dnsAddr, "web.default.svc.cluster.local."); answerA(r) != "10.96.12.34" {
			t.Errorf("%s: over TCP, web.default.svc.cluster.local A: %v, want 10.96.12.34", name, r)
		}
		if body := testenv.HTTPGet(t, "http://"+ready+"/ready"); body != "OK" {
			t.Errorf("%s: /ready answered %q", name, body)
		}
		out, err := podman(ctx, "inspect", "-f", "{{.State.Pid}}", container)
		if err != nil {
			t.Fatal(err)
		}
		if pid, err = strconv.Atoi(strings.TrimSpace(out)); err != nil || pid <= 0 {
			t.Fatalf("%s: pid %q", name, out)
		}
		return container, pid, "http://" + metrics + "/metrics"
	}
	caps := func(t *testing.T, status map[string]string) uint64 {
		t.Helper()
		c, err := strconv.ParseUint(status["CapEff"], 16, 64)
		if err != nil {
			t.Fatalf("CapEff %q: %v", status["CapEff"], err)
		}
		return c
	}
	conntrackUp := func(t *testing.T, url string) map[string]float64 {
		t.Helper()
		text, err := lab.ScrapeURL("", url)
		if err != nil {
			t.Fatal(err)
		}
		up := map[string]float64{}
		for _, s := range lab.ParseMetrics(text) {
			if s.Name == "coredns_raceguard_conntrack_up" {
				up[s.Labels["source"]] = s.Value
			}
		}
		return up
	}

	// As the cluster Deployment runs it: the image's user, NET_BIND_SERVICE. NET_ADMIN is added
	// too, to show that a non-root process never gets it: the reason the node-local DaemonSet
	// runs as root.
	t.Run("image user", func(t *testing.T) {
		container, pid, metrics := run(t, "nonroot", slices.Concat(restricted, []string{"--cap-add", "NET_BIND_SERVICE,NET_ADMIN"})...)
		st := procStatus(t, pid)
		if uid := strings.Fields(st["Uid"]); len(uid) != 4 || strings.Join(uid, " ") != "65532 65532 65532 65532" {
			t.Errorf("Uid %q, want 65532 (real, effective, saved, fs)", st["Uid"])
		}
		if st["NoNewPrivs"] != "1" {
			t.Errorf("NoNewPrivs %q, want 1 (allowPrivilegeEscalation: false)", st["NoNewPrivs"])
		}
		c := caps(t, st)
		if c&(1<<capNetBindService) == 0 {
			t.Errorf("CapEff %x: no CAP_NET_BIND_SERVICE, yet a port below 1024 was bound", c)
		}
		if c&(1<<capNetAdmin) != 0 {
			t.Logf("CapEff %x: this runtime gives a non-root process the added NET_ADMIN (ambient capabilities); Kubernetes does not", c)
		} else if up := conntrackUp(t, metrics); up["netlink"] == 1 {
			t.Errorf("Conntrack read over netlink without CAP_NET_ADMIN: %v", up)
		}
		if out, err := podman(ctx, "top", container, "huser"); err != nil || !strings.Contains(out, "65532") {
			t.Errorf("podman top: %v %q, want user 65532", err, out)
		}
	})

	// The binary's file capability alone: the image's user with podman's default capability
	// bounding set (NET_BIND_SERVICE among it), nothing added, so nothing ambient. podman gives a
	// non-root process the capabilities --cap-add names as ambient ones, which Kubernetes does
	// not: the subtest above binds its port with or without the file capability, this one only
	// with it.
	t.Run("file capability", func(t *testing.T) {
		_, pid, _ := run(t, "filecap")
		st := procStatus(t, pid)
		if st["CapAmb"] != "0000000000000000" {
			t.Errorf("CapAmb %s, want none: the bind must come from the file capability", st["CapAmb"])
		}
		if c := caps(t, st); c != 1<<capNetBindService {
			t.Errorf("CapEff %x, want exactly CAP_NET_BIND_SERVICE (%x), from the file capability", c, 1<<capNetBindService)
		}
	})

	// As the node-local DaemonSet runs it: root with only NET_ADMIN and NET_BIND_SERVICE; the
	// conntrack statistics come over netlink.
	t.Run("node-local security context", func(t *testing.T) {
		_, pid, metrics := run(t, "nodelocal", slices.Concat(restricted, []string{"--user", "0:0", "--cap-add", "NET_ADMIN,NET_BIND_SERVICE"})...)
		st := procStatus(t, pid)
		if c := caps(t, st); c != 1<<capNetBindService|1<<capNetAdmin {
			t.Errorf("CapEff %x, want exactly NET_ADMIN and NET_BIND_SERVICE (%x)", c, 1<<capNetBindService|1<<capNetAdmin)
		}
		if up := conntrackUp(t, metrics); up["netlink"] != 1 {
			t.Errorf("coredns_raceguard_conntrack_up %v, want source netlink at 1", up)
		}
	})
}

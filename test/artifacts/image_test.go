package artifacts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
// runc or setcap.
func imageTools(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"buildah", "podman", "runc", "setcap"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "the image test needs " + strings.Join(missing, ", ") + " (apt-get install buildah podman runc libcap2-bin)"
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

func imageCopyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// stageImage lays out a build context as `make image` does in the repository (Dockerfile,
// .dockerignore and .build/image/), in a directory of its own so that the test never touches the
// checkout's .build/image.
func stageImage(t *testing.T, ctx context.Context, bin string) string {
	t.Helper()
	dir := t.TempDir()
	stage := filepath.Join(dir, ".build", "image")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		src, err := lab.RepoPath(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := imageCopyFile(filepath.Join(dir, f), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := imageCopyFile(filepath.Join(stage, "coredns"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := imageCommand(ctx, "setcap", "cap_net_bind_service=+ep", filepath.Join(stage, "coredns")); err != nil {
		t.Fatal(err)
	}
	if err := imageCopyFile(filepath.Join(stage, "ca-certificates.crt"), "/etc/ssl/certs/ca-certificates.crt", 0o644); err != nil {
		t.Fatalf("CA certificates (apt-get install ca-certificates): %v", err)
	}
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
		"group":  "root:x:0:\nnonroot:x:65532:\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(stage, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
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

// TestImage builds the Dockerfile's image with buildah from the binary the other tests run, the
// way `make image` does, checks its configuration, runs it with podman under the two security
// contexts of deploy/ (the cluster Deployment's image user 65532, and the node-local DaemonSet's
// root with only NET_ADMIN and NET_BIND_SERVICE), queries it over loopback, and removes the
// containers and the image it made.
func TestImage(t *testing.T) {
	imageTools(t)
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// The version and commit the binary reports are the image's labels, as in `make image`.
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

	dir := stageImage(t, ctx, bin)
	tag := fmt.Sprintf("localhost/raceguard-imagetest:%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if out, err := podman(cctx, "rmi", "-f", tag); err != nil {
			t.Errorf("Removing %s: %v %s", tag, err, out)
		}
	})
	start := time.Now()
	if _, err := imageCommand(ctx, "buildah", "bud", "--format", "oci", "--quiet", "-f", filepath.Join(dir, "Dockerfile"),
		"--build-arg", "VERSION="+version[1], "--build-arg", "REVISION="+revision,
		"--build-arg", "COREDNS_VERSION="+coreVersion[1], "-t", tag, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("buildah bud: %s", time.Since(start).Round(time.Millisecond))

	// The configuration: CoreDNS's conventions.
	out, err = podman(ctx, "image", "inspect", tag)
	if err != nil {
		t.Fatal(err)
	}
	var inspect []struct {
		Config struct {
			User         string
			Entrypoint   []string
			ExposedPorts map[string]struct{}
			WorkingDir   string
			Labels       map[string]string
		}
	}
	if err := json.Unmarshal([]byte(out), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	cfg := inspect[0].Config
	if cfg.User != "65532:65532" {
		t.Errorf("USER %q, want 65532:65532 (numeric, for runAsNonRoot)", cfg.User)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/coredns" {
		t.Errorf("ENTRYPOINT %v, want [/coredns]", cfg.Entrypoint)
	}
	for _, p := range []string{"53/tcp", "53/udp", "9153/tcp"} {
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("EXPOSE: no %s in %v", p, cfg.ExposedPorts)
		}
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  version[1],
		"org.opencontainers.image.revision": revision,
		"io.coredns.version":                coreVersion[1],
	} {
		if cfg.Labels[k] != want {
			t.Errorf("Label %s = %q, want %q", k, cfg.Labels[k], want)
		}
	}
	// The binary in the image is the one built: it reports the same commit.
	out, err = podman(ctx, append(append([]string{"run", "--rm"}, podmanRun...), tag, "-version")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "raceguard-"+version[1]) || !strings.Contains(out, "CoreDNS-"+coreVersion[1]) {
		t.Errorf("The image's /coredns -version said %q, want CoreDNS-%s and raceguard-%s", out, coreVersion[1], version[1])
	}

	zones, err := lab.RepoPath("zones")
	if err != nil {
		t.Fatal(err)
	}

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
		args = append(args, "--read-only", "--security-opt", "no-new-privileges", "--cap-drop", "ALL")
		args = append(args, security...)
		args = append(args, "-v", conf+":/etc/coredns:ro", "-v", zones+":/zones:ro", tag, "-conf", "/etc/coredns/Corefile")
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
		container, pid, metrics := run(t, "nonroot", "--cap-add", "NET_BIND_SERVICE,NET_ADMIN")
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

	// As the node-local DaemonSet runs it: root with only NET_ADMIN and NET_BIND_SERVICE; the
	// conntrack statistics come over netlink.
	t.Run("node-local security context", func(t *testing.T) {
		_, pid, metrics := run(t, "nodelocal", "--user", "0:0", "--cap-add", "NET_ADMIN,NET_BIND_SERVICE")
		st := procStatus(t, pid)
		if c := caps(t, st); c != 1<<capNetBindService|1<<capNetAdmin {
			t.Errorf("CapEff %x, want exactly NET_ADMIN and NET_BIND_SERVICE (%x)", c, 1<<capNetBindService|1<<capNetAdmin)
		}
		if up := conntrackUp(t, metrics); up["netlink"] != 1 {
			t.Errorf("coredns_raceguard_conntrack_up %v, want source netlink at 1", up)
		}
	})
}

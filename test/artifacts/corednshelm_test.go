package artifacts

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// corednsHelmMirror is where `fetch github:coredns/helm` leaves its snapshot of coredns/helm (a
// bare git directory) on the machines this project is developed on. RACEGUARD_COREDNS_HELM names
// another copy: a checkout of github.com/coredns/helm or its git directory.
const corednsHelmMirror = "/work/.mirror/coredns+helm/repo"

// corednsChart copies the coredns chart of a local copy of coredns/helm into a temporary
// directory and returns it, or skips t: no test reaches the network for it, and CI has none.
func corednsChart(t *testing.T) string {
	t.Helper()
	src := os.Getenv("RACEGUARD_COREDNS_HELM")
	if src == "" {
		src = corednsHelmMirror
	}
	if _, err := os.Stat(src); err != nil {
		t.Skipf("Skipping: no copy of the coredns/helm chart at %s (set RACEGUARD_COREDNS_HELM to a checkout of github.com/coredns/helm): "+
			"deploy/cluster/coredns-helm/values.yaml is checked against that chart only where a copy is at hand, never in CI", src)
	}
	dst := t.TempDir()
	if _, err := os.Stat(filepath.Join(src, "charts/coredns/Chart.yaml")); err == nil {
		if out, err := exec.CommandContext(t.Context(), "cp", "-r", filepath.Join(src, "charts/coredns"), dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
	} else {
		tarball := filepath.Join(t.TempDir(), "coredns-helm.tar")
		for _, args := range [][]string{
			{"git", "--git-dir", src, "archive", "--output", tarball, "HEAD", "charts/coredns"},
			{"tar", "-x", "-f", tarball, "--strip-components=1", "-C", dst},
		} {
			if out, err := exec.CommandContext(t.Context(), args[0], args[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
	return filepath.Join(dst, "coredns")
}

// TestCoreDNSHelmValues renders the coredns chart of coredns/helm with
// deploy/cluster/coredns-helm/values.yaml and checks that it runs what deploy/cluster runs: the
// same Corefile (which TestDeployCorefiles starts) and image, and a container that can bind :53
// as the image's user.
func TestCoreDNSHelmValues(t *testing.T) {
	chart := corednsChart(t)
	meta := readChartMeta(t, chart)
	t.Logf("coredns/helm chart %s %s (appVersion %s)", meta.Name, meta.Version, meta.AppVersion)
	values, err := filepath.Abs("../../deploy/cluster/coredns-helm/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := mustTemplate(t, chart, "coredns", "kube-system", []string{values})
	pod := oneOf[*appsv1.Deployment](t, b).Spec.Template

	cluster := loadBundle(t, "cluster")
	want := corefileOf(t, cluster, oneOf[*appsv1.Deployment](t, cluster).Spec.Template)
	if got := corefileOf(t, b, pod); corefileLines(got) != corefileLines(want) {
		t.Errorf("The Corefile differs from deploy/cluster/configmap.yaml's (- deploy/cluster, + coredns chart):\n%s", lineDiff(corefileLines(want), corefileLines(got)))
	}

	c := pod.Spec.Containers[0]
	if img := makefileImage(t); c.Image != img {
		t.Errorf("Image %s, want %s, as deploy/cluster has it", c.Image, img)
	}
	// The image's user binds :53 through the binary's file capability, which needs
	// NET_BIND_SERVICE in the bounding set.
	if sc := c.SecurityContext; sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Add, corev1.Capability("NET_BIND_SERVICE")) {
		t.Errorf("Container securityContext %+v: want NET_BIND_SERVICE added, for the image's user to bind :53", sc)
	}
	if sc := c.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Error("Container runs as root: the cluster variant needs no capability beyond binding :53")
	}
	metrics := false
	for _, p := range c.Ports {
		metrics = metrics || p.ContainerPort == 9153
	}
	if !metrics {
		t.Errorf("Container ports %v: want 9153, the prometheus plugin's", c.Ports)
	}

	// What the Corefile reads from the API (the kubernetes plugin's, raceguard's pod watch), that
	// chart's ClusterRole lets the pods' service account list and watch (it grants endpoints too),
	// with the token mounted.
	granted := map[string]bool{}
	for _, r := range objectsOf[*rbacv1.ClusterRole](b) {
		bound := slices.ContainsFunc(objectsOf[*rbacv1.ClusterRoleBinding](b), func(crb *rbacv1.ClusterRoleBinding) bool {
			return crb.RoleRef.Name == r.Name && slices.ContainsFunc(crb.Subjects, func(s rbacv1.Subject) bool {
				return s.Kind == "ServiceAccount" && s.Name == pod.Spec.ServiceAccountName
			})
		})
		for _, rule := range r.Rules {
			if !bound || !slices.Contains(rule.Verbs, "list") || !slices.Contains(rule.Verbs, "watch") {
				continue
			}
			for _, res := range ruleResources(rule) {
				granted[res] = true
			}
		}
	}
	for res := range apiAccess(want) {
		if !granted[res] {
			t.Errorf("The coredns chart grants ServiceAccount %s no list and watch of %s, which the Corefile reads", pod.Spec.ServiceAccountName, res)
		}
	}
	if a := pod.Spec.AutomountServiceAccountToken; a != nil && !*a {
		t.Error("The coredns chart's pods mount no service account token: the kubernetes plugin and the pod watch need it")
	}
}

// corefileLines returns a Corefile with each line trimmed and blank lines dropped: the coredns
// chart indents its own way.
func corefileLines(corefile string) string {
	var out []string
	for _, l := range strings.Split(corefile, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

package artifacts

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// The migration from NodeLocal DNSCache and the rollback, as deploy/README.md gives them: what a
// test can run of its commands runs here, on the objects they act on.

// migrationCommands returns the shell commands of deploy/README.md's "Migrating from NodeLocal
// DNSCache" section, continuation lines joined, comments dropped, in order.
func migrationCommands(t *testing.T) []string {
	t.Helper()
	text := string(testenv.ReadRepoFile(t, "deploy/README.md"))
	i := strings.Index(text, "### Migrating from NodeLocal DNSCache\n")
	if i < 0 {
		t.Fatal("deploy/README.md: no Migrating from NodeLocal DNSCache section")
	}
	text = text[i:]
	if j := strings.Index(text[4:], "\n## "); j >= 0 {
		text = text[:j+4]
	}
	var cmds []string
	in, cur := false, ""
	for _, line := range strings.Split(text, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case l == "~~~ sh":
			in = true
		case l == "~~~":
			in = false
		case in:
			if k := strings.Index(l, "   #"); k >= 0 {
				l = strings.TrimSpace(l[:k])
			}
			if strings.HasPrefix(l, "#") || l == "" {
				continue
			}
			if strings.HasSuffix(l, "\\") {
				cur += strings.TrimSuffix(l, "\\")
				continue
			}
			cmds = append(cmds, cur+l)
			cur = ""
		}
	}
	return cmds
}

// shellWords splits a command as the shell would, for single quotes only.
func shellWords(cmd string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`'[^']*'|\S+`).FindAllString(cmd, -1) {
		out = append(out, strings.Trim(m, "'"))
	}
	return out
}

// mergePatch applies a JSON merge patch (RFC 7386, kubectl patch --type merge) to doc.
func mergePatch(doc, patch map[string]any) map[string]any {
	for k, v := range patch {
		pv, ok := v.(map[string]any)
		if !ok {
			if v == nil {
				delete(doc, k)
			} else {
				doc[k] = v
			}
			continue
		}
		dv, _ := doc[k].(map[string]any)
		if dv == nil {
			dv = map[string]any{}
		}
		doc[k] = mergePatch(dv, pv)
	}
	return doc
}

// affinitySelector returns the node labels a DaemonSet's pods may run on, from its nodeSelector
// and its required node affinity (one term of matchExpressions, as deploy/README.md writes it).
func affinitySelector(t *testing.T, spec corev1.PodSpec) labels.Selector {
	t.Helper()
	sel := labels.SelectorFromSet(spec.NodeSelector)
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 1 {
			t.Fatalf("Want one node selector term, got %v", terms)
		}
		for _, e := range terms[0].MatchExpressions {
			r, err := labels.NewRequirement(e.Key, selection.Operator(strings.ToLower(string(e.Operator))), e.Values)
			if err != nil {
				t.Fatal(err)
			}
			sel = sel.Add(*r)
		}
	}
	return sel
}

// TestMigrationCommands runs what a test can of the migration and the rollback:
//   - step 3's patch, applied to node-cache's DaemonSet, and step 4's install, rendered: on a
//     labelled node only raceguard runs, on any other only node-cache, never both or neither;
//   - step 6's deletions leave the kube-dns-upstream Service, which the rendered raceguard
//     forwards to and does not own, and the chart keeps the one it makes (helm.sh/resource-policy);
//   - the Service comes before the DaemonSet, in Helm's order and in the README's commands;
//   - the rollback labels every node before it gives raceguard the label selector again.
func TestMigrationCommands(t *testing.T) {
	cmds := migrationCommands(t)
	find := func(prefix string) []string {
		var out []string
		for _, c := range cmds {
			if strings.HasPrefix(c, prefix) {
				out = append(out, c)
			}
		}
		return out
	}

	// Step 3: node-cache's DaemonSet, patched.
	patches := find("kubectl -n kube-system patch daemonset node-local-dns --type merge -p ")
	if len(patches) != 1 {
		t.Fatalf("Want one patch of node-local-dns, got %v", patches)
	}
	w := shellWords(patches[0])
	var patch map[string]any
	if err := json.Unmarshal([]byte(w[len(w)-1]), &patch); err != nil {
		t.Fatalf("The patch is not JSON: %v", err)
	}
	nodeCache := map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"nodeSelector": map[string]any{"kubernetes.io/os": "linux"}, "priorityClassName": "system-node-critical"}}}}
	b, _ := json.Marshal(mergePatch(nodeCache, patch))
	var ncDS appsv1.DaemonSet
	if err := json.Unmarshal(b, &ncDS); err != nil {
		t.Fatal(err)
	}
	if ncDS.Spec.Template.Spec.PriorityClassName != "system-node-critical" {
		t.Error("The patch lost node-cache's own pod spec")
	}

	// Step 4: raceguard, rendered as the README installs it, with the mapped Corefile.
	installs := find("helm install raceguard ")
	if len(installs) != 1 {
		t.Fatalf("Want one helm install, got %v", installs)
	}
	in, err := os.Open("testdata/nodelocaldns.Corefile")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	mapping := exec.CommandContext(t.Context(), mustRepoPath(t, "hack/nodelocaldns-values.sh"), "cluster.local")
	mapping.Stdin = in
	values, err := mapping.Output()
	if err != nil {
		t.Fatal(err)
	}
	var set []string
	args := []string{"template", "raceguard", chartPath(t), "--namespace", "kube-system"}
	iw := shellWords(installs[0])
	for i := 0; i < len(iw)-1; i++ {
		switch iw[i] {
		case "--set", "--set-json":
			args = append(args, iw[i], iw[i+1])
			set = append(set, iw[i+1])
		case "-f":
			if iw[i+1] != "nodelocaldns-values.yaml" {
				t.Errorf("helm install -f %s, want step 2's nodelocaldns-values.yaml", iw[i+1])
			}
			args = append(args, "--values", chartValuesFile(t, string(values)))
		}
	}
	if !slices.Contains(set, "upstreamService.create=false") {
		t.Errorf("helm install %v: want upstreamService.create=false, to use node-cache's kube-dns-upstream", set)
	}
	rgBundle := renderArgs(t, args...)
	rgDS := oneOf[*appsv1.DaemonSet](t, rgBundle)
	rgSel, ncSel := affinitySelector(t, rgDS.Spec.Template.Spec), affinitySelector(t, ncDS.Spec.Template.Spec)
	for _, node := range []map[string]string{
		{"kubernetes.io/os": "linux"},
		{"kubernetes.io/os": "linux", "raceguard-node-local": "true"},
	} {
		rg, nc := rgSel.Matches(labels.Set(node)), ncSel.Matches(labels.Set(node))
		if rg == nc {
			t.Errorf("Node %v: raceguard runs %v, node-cache %v; want exactly one", node, rg, nc)
		}
		if _, labelled := node["raceguard-node-local"]; labelled != rg {
			t.Errorf("Node %v: raceguard runs %v, want only on labelled nodes", node, rg)
		}
	}

	// Step 6: what survives deleting node-cache.
	nodeLocalObjects := []string{"daemonset/node-local-dns", "configmap/node-local-dns", "service/node-local-dns",
		"serviceaccount/node-local-dns", "service/kube-dns-upstream"}
	left := slices.Clone(nodeLocalObjects)
	for _, c := range find("kubectl -n kube-system delete ") {
		f := shellWords(c)
		if len(f) != 6 || f[4] == "-f" {
			t.Errorf("%q: want node-cache's objects deleted one by one, by kind and name", c)
			continue
		}
		left = slices.DeleteFunc(left, func(o string) bool { return o == f[4]+"/"+f[5] })
	}
	if !slices.Equal(left, []string{"service/kube-dns-upstream"}) {
		t.Errorf("After step 6 node-cache's objects left: %v, want only service/kube-dns-upstream", left)
	}
	for _, svc := range objectsOf[*corev1.Service](rgBundle) {
		if svc.Name == "kube-dns-upstream" {
			t.Error("raceguard, installed with upstreamService.create=false, renders kube-dns-upstream: it would own node-cache's Service")
		}
	}
	if fw := directiveArgs(corefileOf(t, rgBundle, rgDS.Spec.Template), "forward"); len(fw) == 0 || !slices.Contains(fw[0], "{$KUBE_DNS_UPSTREAM_SERVICE_HOST}") {
		t.Errorf("raceguard's main block forwards %v, want to kube-dns-upstream, the Service that survives", fw)
	}
	def := mustTemplate(t, chartPath(t), "raceguard", "kube-system", nil)
	svcAt, dsAt := -1, -1
	for i, o := range def.objs {
		switch o := o.(type) {
		case *corev1.Service:
			if o.Name == "kube-dns-upstream" {
				svcAt = i
				if o.Annotations["helm.sh/resource-policy"] != "keep" {
					t.Error("The chart's kube-dns-upstream: want helm.sh/resource-policy: keep, so that uninstalling raceguard leaves node-cache its upstream")
				}
			}
		case *appsv1.DaemonSet:
			dsAt = i
		}
	}
	if svcAt < 0 || svcAt > dsAt {
		t.Errorf("helm template: kube-dns-upstream at %d, the DaemonSet at %d; want the Service first", svcAt, dsAt)
	}

	// The rollback: every node labelled before raceguard gets the label selector back.
	labelAll, selector := -1, -1
	for i, c := range cmds {
		if strings.HasPrefix(c, "kubectl label nodes --all raceguard-node-local=true") {
			labelAll = i
		}
		if strings.HasPrefix(c, "helm upgrade raceguard ") && strings.Contains(c, `"raceguard-node-local":"true"`) {
			selector = i
		}
	}
	if labelAll < 0 || selector < labelAll {
		t.Errorf("Rollback: label every node (%d) before the label selector (%d)", labelAll, selector)
	}
}

// TestDeployApplyOrder: wherever deploy/README.md applies node-local/ by hand, kube-dns-upstream.yaml
// comes first (the pods read its address when they are created).
func TestDeployApplyOrder(t *testing.T) {
	text := string(testenv.ReadRepoFile(t, "deploy/README.md"))
	re := regexp.MustCompile("kubectl apply -f deploy/node-local/(kube-dns-upstream.yaml)?")
	upstream := false
	n := 0
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if m[1] != "" {
			upstream = true
			continue
		}
		n++
		if !upstream {
			t.Errorf("deploy/README.md applies deploy/node-local/ (use %d) before kube-dns-upstream.yaml", n)
		}
	}
	if n == 0 {
		t.Error("deploy/README.md never applies deploy/node-local/")
	}
}

// renderArgs runs helm with args (a template command) and decodes what it renders.
func renderArgs(t *testing.T, args ...string) *bundle {
	t.Helper()
	out, err := testenv.Helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := decodeManifests(f)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{name: "helm " + strings.Join(args, " "), objs: objs}
}

func mustRepoPath(t *testing.T, p string) string {
	t.Helper()
	r, err := lab.RepoPath(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

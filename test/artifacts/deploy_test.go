package artifacts

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The manifests in deploy/ are plain YAML, one directory per variant: node-local (a hostNetwork
// DaemonSet on a link-local address, forwarding to kube-dns), node-local-observe, and cluster (a
// kube-dns replacement). TestDeployManifests decodes every document strictly (manifest_test.go)
// and runs the checks of each variant: what they share here, the node-local DaemonSet's in
// deploynodelocal_test.go, the cluster Deployment's in deploycluster_test.go, their API access
// (the pod watch, RBAC and token) in deployrbac_test.go; the Corefiles are started in
// deploycorefile_test.go.

// TestDeployManifests checks the variants: strict decoding, then the properties each must have.
// The node-local and cluster variants watch pods for exact search lists (search pods); the
// observe-only one takes no pod's traffic and has no watch.
func TestDeployManifests(t *testing.T) {
	image := makefileImage(t)
	var images []string
	for _, dir := range []string{"node-local", "node-local-observe", "cluster"} {
		t.Run(dir, func(t *testing.T) {
			b := loadBundle(t, dir)
			var pod corev1.PodTemplateSpec
			switch dir {
			case "node-local":
				pod = checkNodeLocalBundle(t, b, "{$KUBE_DNS_SERVICE_HOST}", "kube-dns-upstream")
				checkSearch(t, b, pod, "pods")
			case "node-local-observe":
				pod = checkObserveBundle(t, b)
				checkSearch(t, b, pod, "infer")
			case "cluster":
				checkNamespaces(t, b)
				d := oneOf[*appsv1.Deployment](t, b)
				pod = d.Spec.Template
				checkSelects(t, "Deployment selector", d.Spec.Selector, pod.Labels)
				checkCluster(t, b, d)
				checkBuiltIn(t, b)
				checkPod(t, b, pod)
				checkRBAC(t, b, pod, corefileOf(t, b, pod))
				checkSearch(t, b, pod, "pods")
			}
			for _, c := range pod.Spec.Containers {
				images = append(images, c.Image)
			}
		})
	}
	for _, img := range images {
		if img != image {
			t.Errorf("Image %s: want %s, the image `make image` builds (Makefile IMAGE), in every manifest", img, image)
		}
	}
}

// checkNodeLocalBundle runs every check of the node-local variant on b (deploy/node-local, or
// the chart rendered), with checkNodeLocal's clusterIP and upstream, and returns the pod template.
func checkNodeLocalBundle(t *testing.T, b *bundle, clusterIP, upstream string) corev1.PodTemplateSpec {
	t.Helper()
	checkNamespaces(t, b)
	ds := oneOf[*appsv1.DaemonSet](t, b)
	pod := ds.Spec.Template
	checkSelects(t, "DaemonSet selector", ds.Spec.Selector, pod.Labels)
	checkNodeLocal(t, b, ds, clusterIP, upstream)
	checkBuiltIn(t, b)
	checkPod(t, b, pod)
	checkRBAC(t, b, pod, corefileOf(t, b, pod))
	return pod
}

// checkSearch: the Corefile's raceguard takes its search lists from want (pods, infer).
func checkSearch(t *testing.T, b *bundle, pod corev1.PodTemplateSpec, want string) {
	t.Helper()
	corefile := corefileOf(t, b, pod)
	if s := directiveArgs(corefile, "search"); len(directiveArgs(corefile, "raceguard")) != 1 || len(s) != 1 || !slices.Equal(s[0], []string{want}) {
		t.Errorf("%s: raceguard's search %v, want search %s", b.name, s, want)
	}
}

// checkNamespaces: every namespaced object of b is in kube-system, with kube-dns.
func checkNamespaces(t *testing.T, b *bundle) {
	t.Helper()
	for _, o := range b.objs {
		if m, ok := o.(metav1.Object); ok && m.GetNamespace() != "" && m.GetNamespace() != "kube-system" {
			t.Errorf("%s: %T %s: namespace %q, want kube-system", b.name, o, m.GetName(), m.GetNamespace())
		}
	}
}

func checkSelects(t *testing.T, what string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if s.Empty() || !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s %s does not select the pod template's labels %v", what, s, podLabels)
	}
}

// checkPod checks what both variants share: hardening, probes on the Corefile's health and ready
// listeners, resources, and the ServiceAccount.
func checkPod(t *testing.T, b *bundle, pod corev1.PodTemplateSpec) {
	t.Helper()
	spec := pod.Spec
	corefile := corefileOf(t, b, pod)
	if spec.SecurityContext == nil || spec.SecurityContext.SeccompProfile == nil || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("Pod: want seccompProfile RuntimeDefault")
	}
	if spec.DNSPolicy != corev1.DNSDefault {
		t.Errorf("Pod: dnsPolicy %q, want Default (the node's resolv.conf: forward's upstreams and node_search)", spec.DNSPolicy)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("Pod: %d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("Container: imagePullPolicy %q, want IfNotPresent", c.ImagePullPolicy)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("Container: want readOnlyRootFilesystem")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("Container: want allowPrivilegeEscalation false")
	}
	if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Error("Container: want capabilities drop [ALL]")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("Container: no %s request", r)
		}
	}

	// Probes: the kubelet must reach the health and ready plugins where the Corefile puts them.
	for _, p := range []struct {
		name, directive, path string
		probe                 *corev1.Probe
	}{
		{"livenessProbe", "health", "/health", c.LivenessProbe},
		{"readinessProbe", "ready", "/ready", c.ReadinessProbe},
	} {
		host, port := corefileListener(t, corefile, p.directive)
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe of %s", p.name, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || g.Port != intstr.FromInt32(int32(port)) {
			t.Errorf("%s: %s on port %s, want %s on %d (the Corefile's %s)", p.name, g.Path, g.Port.String(), p.path, port, p.directive)
		}
		if host == "0.0.0.0" || host == "::" {
			host = ""
		}
		if g.Host != host {
			t.Errorf("%s: host %q, want %q: the Corefile's %s listens there", p.name, g.Host, host, p.directive)
		}
	}

	// The ServiceAccount exists in the directory.
	var sa *corev1.ServiceAccount
	for _, s := range objectsOf[*corev1.ServiceAccount](b) {
		if s.Name == spec.ServiceAccountName {
			sa = s
		}
	}
	if sa == nil {
		t.Errorf("Pod: ServiceAccount %q is not in %s", spec.ServiceAccountName, b.name)
	}
}

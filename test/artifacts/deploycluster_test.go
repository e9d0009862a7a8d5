package artifacts

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// checkCluster checks the kube-dns replacement.
func checkCluster(t *testing.T, b *bundle, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template
	spec := pod.Spec
	c := spec.Containers[0]
	corefile := corefileOf(t, b, pod)

	if d.Name != "coredns" || d.Spec.Selector.MatchLabels["k8s-app"] != "kube-dns" || pod.Labels["k8s-app"] != "kube-dns" {
		t.Error("Deployment: want kubeadm's name (coredns) and selector (k8s-app: kube-dns), to replace it in place")
	}
	if spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("Deployment: priorityClassName %q, want system-cluster-critical", spec.PriorityClassName)
	}
	if spec.HostNetwork {
		t.Error("Deployment: hostNetwork, want the pod network")
	}
	sc := c.SecurityContext
	if sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("Deployment: want runAsUser 65532 (the image's user) and runAsNonRoot")
	}
	if caps := sc.Capabilities.Add; !slices.Equal(caps, []corev1.Capability{"NET_BIND_SERVICE"}) {
		t.Errorf("Deployment: capabilities add %v, want only NET_BIND_SERVICE", caps)
	}
	if r := d.Spec.Strategy.RollingUpdate; r == nil || r.MaxUnavailable == nil || r.MaxUnavailable.String() != "0" {
		t.Error("Deployment: want a rolling update with maxUnavailable 0")
	}
	a := spec.Affinity
	if a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Error("Deployment: want a preferred pod anti-affinity (required would block the surge pod on small clusters)")
	} else {
		term := a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
		checkSelects(t, "anti-affinity", term.LabelSelector, pod.Labels)
		if term.TopologyKey != "kubernetes.io/hostname" {
			t.Errorf("Deployment: anti-affinity topology %q, want kubernetes.io/hostname", term.TopologyKey)
		}
	}
	pdb := oneOf[*policyv1.PodDisruptionBudget](t, b)
	checkSelects(t, "PodDisruptionBudget selector", pdb.Spec.Selector, pod.Labels)

	// The kube-dns Service: 10.96.0.10, DNS over UDP and TCP to the pods.
	var svc *corev1.Service
	for _, s := range objectsOf[*corev1.Service](b) {
		if s.Name == "kube-dns" {
			svc = s
		}
	}
	if svc == nil {
		t.Fatal("deploy/cluster: no kube-dns Service")
	}
	if svc.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("kube-dns Service: clusterIP %s, want 10.96.0.10", svc.Spec.ClusterIP)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("kube-dns Service: selector %v does not select the pods", svc.Spec.Selector)
	}
	for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
		ok := false
		for _, p := range svc.Spec.Ports {
			ok = ok || (p.Protocol == proto && p.Port == 53 && p.TargetPort.IntValue() == 53)
		}
		if !ok {
			t.Errorf("kube-dns Service: no port 53/%s", proto)
		}
	}
	// The kube-dns Corefile with raceguard and collapse.
	for _, d := range []string{"kubernetes", "forward", "cache", "loop", "reload", "loadbalance", "errors", "raceguard", "collapse"} {
		if len(directiveArgs(corefile, d)) != 1 {
			t.Errorf("Deployment Corefile: want one %s", d)
		}
	}
	if p := directiveArgs(corefile, "prometheus"); len(p) != 1 || len(p[0]) != 1 || p[0][0] != ":9153" {
		t.Errorf("Deployment Corefile: prometheus %v, want :9153", p)
	}
	// Scraped as kube-dns is, with no ServiceMonitor of ours: kube-prometheus-stack's coreDns
	// monitor selects pods labelled k8s-app: kube-dns in kube-system on 9153 (checked above), and
	// kube-prometheus's the kube-dns Service's port named metrics.
	metrics := false
	for _, p := range svc.Spec.Ports {
		metrics = metrics || (p.Name == "metrics" && p.TargetPort.IntValue() == 9153)
	}
	if !metrics {
		t.Error("kube-dns Service: no port named metrics targeting 9153, which kube-prometheus's CoreDNS ServiceMonitor scrapes")
	}
	// That ServiceMonitor's jobLabel is app.kubernetes.io/name (the Service's name without it); its
	// CoreDNS alerts (coredns-mixin's CoreDNSDown among them) select job="kube-dns".
	if job, ok := svc.Labels["app.kubernetes.io/name"]; ok && job != "kube-dns" {
		t.Errorf("kube-dns Service: label app.kubernetes.io/name %q would make kube-prometheus's CoreDNS job %q, not kube-dns", job, job)
	}
}

// checkServiceMonitor: sm selects a Service of b whose named port reaches the
// Corefile's prometheus listener on the pods.
func checkServiceMonitor(t *testing.T, sm *serviceMonitor, b *bundle, pod corev1.PodTemplateSpec) {
	t.Helper()
	_, metricsPort := corefileListener(t, corefileOf(t, b, pod), "prometheus")
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("ServiceMonitor %s: selector: %v", sm.Name, err)
	}
	if len(sm.Spec.Endpoints) == 0 {
		t.Fatalf("ServiceMonitor %s: no endpoints", sm.Name)
	}
	for _, ep := range sm.Spec.Endpoints {
		found := false
		for _, svc := range objectsOf[*corev1.Service](b) {
			if !sel.Matches(labels.Set(svc.Labels)) || !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, svc.Namespace) {
				continue
			}
			for _, p := range svc.Spec.Ports {
				if p.Name != ep.Port {
					continue
				}
				found = true
				target := p.TargetPort
				if target.Type == intstr.String {
					// A named target port must be a container port of that name.
					for _, cp := range pod.Spec.Containers[0].Ports {
						if cp.Name == target.StrVal {
							target = intstr.FromInt32(cp.ContainerPort)
						}
					}
				}
				if target.IntValue() != metricsPort {
					t.Errorf("Service %s port %s: targets %s, want the Corefile's prometheus port %d", svc.Name, p.Name, p.TargetPort.String(), metricsPort)
				}
				if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) || len(svc.Spec.Selector) == 0 {
					t.Errorf("Service %s: selector %v does not select the pods", svc.Name, svc.Spec.Selector)
				}
			}
		}
		if !found {
			t.Errorf("ServiceMonitor %s: port %q is not a port of a Service it selects in %s", sm.Name, ep.Port, b.name)
		}
		for _, r := range append(slices.Clone(ep.Relabelings), ep.MetricRelabelings...) {
			if !slices.Contains([]string{"replace", "keep", "drop", "labeldrop", "labelkeep", "labelmap", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"}, r.Action) {
				t.Errorf("ServiceMonitor %s: relabel action %q", sm.Name, r.Action)
			}
		}
	}
}

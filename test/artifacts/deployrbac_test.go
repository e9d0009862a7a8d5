package artifacts

import (
	"maps"
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/utils/ptr"
)

// What a variant may ask the API server, and what it must be given for it: the kubernetes
// plugin's reads and raceguard's pod watch (search pods), each list and watch only, through the
// pod's ServiceAccount token; a variant that reads nothing gets no token and no RBAC at all.

// apiAccess returns the resources a Corefile reads from the API server (group/resource, the core
// group's without a group): services, namespaces and endpoint slices for the kubernetes plugin
// (and pods with `pods verified`), pods for raceguard's pod watch (`search pods`).
func apiAccess(corefile string) map[string]bool {
	want := map[string]bool{}
	if len(directiveArgs(corefile, "kubernetes")) > 0 {
		want["services"], want["namespaces"], want["discovery.k8s.io/endpointslices"] = true, true, true
		if p := directiveArgs(corefile, "pods"); len(p) > 0 && len(p[0]) > 0 && p[0][0] == "verified" {
			want["pods"] = true
		}
	}
	if podWatch(corefile) {
		want["pods"] = true
	}
	return want
}

// ruleResources returns the resources a policy rule names, as apiAccess names them.
func ruleResources(rule rbacv1.PolicyRule) []string {
	var out []string
	for _, g := range rule.APIGroups {
		for _, res := range rule.Resources {
			if g != "" {
				res = g + "/" + res
			}
			out = append(out, res)
		}
	}
	return out
}

// podWatch reports whether a Corefile's raceguard watches pods (search pods).
func podWatch(corefile string) bool {
	return slices.ContainsFunc(directiveArgs(corefile, "search"), func(a []string) bool { return slices.Equal(a, []string{"pods"}) })
}

// checkRBAC: the ClusterRoles of b grant list and watch only, of exactly what the Corefile reads
// (apiAccess), each bound to the pod's ServiceAccount in kube-system and to nothing else, and the
// ServiceAccount's token is mounted in the pod exactly when the Corefile reads anything.
func checkRBAC(t *testing.T, b *bundle, pod corev1.PodTemplateSpec, corefile string) {
	t.Helper()
	want := apiAccess(corefile)
	roles := objectsOf[*rbacv1.ClusterRole](b)
	bindings := objectsOf[*rbacv1.ClusterRoleBinding](b)
	if n := len(objectsOf[*rbacv1.Role](b)) + len(objectsOf[*rbacv1.RoleBinding](b)); n > 0 {
		t.Errorf("%s: %d namespaced Roles and RoleBindings, want none", b.name, n)
	}
	got := map[string]bool{}
	for _, r := range roles {
		for _, rule := range r.Rules {
			if !slices.Equal(rule.Verbs, []string{"list", "watch"}) {
				t.Errorf("ClusterRole %s: verbs %v, want exactly list and watch", r.Name, rule.Verbs)
			}
			if len(rule.NonResourceURLs) > 0 || len(rule.ResourceNames) > 0 {
				t.Errorf("ClusterRole %s: a rule with nonResourceURLs %v or resourceNames %v", r.Name, rule.NonResourceURLs, rule.ResourceNames)
			}
			for _, res := range ruleResources(rule) {
				got[res] = true
			}
		}
	}
	for _, res := range slices.Sorted(maps.Keys(want)) {
		if !got[res] {
			t.Errorf("%s: no list/watch on %s, which the Corefile reads", b.name, res)
		}
	}
	for _, res := range slices.Sorted(maps.Keys(got)) {
		if !want[res] {
			t.Errorf("%s: access to %s, which this Corefile does not need", b.name, res)
		}
	}
	sa := pod.Spec.ServiceAccountName
	for _, r := range roles {
		bound := false
		for _, crb := range bindings {
			if crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != r.Name {
				continue
			}
			for _, s := range crb.Subjects {
				if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == "kube-system" {
					bound = true
				} else {
					t.Errorf("ClusterRoleBinding %s: subject %s %s/%s, want only ServiceAccount kube-system/%s", crb.Name, s.Kind, s.Namespace, s.Name, sa)
				}
			}
		}
		if !bound {
			t.Errorf("%s: no ClusterRoleBinding binds ClusterRole %s to ServiceAccount %s", b.name, r.Name, sa)
		}
	}
	for _, crb := range bindings {
		if !slices.ContainsFunc(roles, func(r *rbacv1.ClusterRole) bool { return r.Name == crb.RoleRef.Name }) {
			t.Errorf("ClusterRoleBinding %s: binds %s, which is not among %s's ClusterRoles", crb.Name, crb.RoleRef.Name, b.name)
		}
	}

	// The token: mounted when the pod reads the API, not otherwise.
	mounted := pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken
	for _, s := range objectsOf[*corev1.ServiceAccount](b) {
		if s.Name == sa && pod.Spec.AutomountServiceAccountToken == nil && s.AutomountServiceAccountToken != nil {
			mounted = *s.AutomountServiceAccountToken
		}
		if s.Name == sa && len(want) == 0 && (s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken) {
			t.Errorf("ServiceAccount %s: want automountServiceAccountToken false: the pod never talks to the API server", s.Name)
		}
	}
	switch {
	case len(want) > 0 && !mounted:
		t.Errorf("%s: the Corefile reads %v from the API server, but the pod's ServiceAccount token is not mounted", b.name, slices.Sorted(maps.Keys(want)))
	case len(want) == 0 && (pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken):
		t.Errorf("%s: want automountServiceAccountToken false in the pod: it never talks to the API server", b.name)
	}
}

// checkKubeletResolvConf: a node-local server's node_search is a file the pod mounts read-only from
// the node at the same path under /host, a file alone (hostPath type File) or its directory
// (type Directory), never / or /etc whole. It returns the node's path of the file.
func checkKubeletResolvConf(t *testing.T, pod corev1.PodTemplateSpec, corefile string) string {
	t.Helper()
	ns := directiveArgs(corefile, "node_search")
	if len(ns) != 1 || len(ns[0]) != 1 || !strings.HasPrefix(ns[0][0], "/host/") {
		t.Errorf("Corefile: node_search %v, want the kubelet's resolv.conf, mounted from the node under /host", ns)
		return ""
	}
	file := ns[0][0]
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		if m.MountPath != file && m.MountPath != path.Dir(file) {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("Volume mount %s at %s: want readOnly", m.Name, m.MountPath)
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			h := v.HostPath
			if h == nil || "/host"+h.Path != m.MountPath {
				t.Errorf("Volume %s: %+v, want hostPath %s, the node's path of its mount", v.Name, v.VolumeSource, strings.TrimPrefix(m.MountPath, "/host"))
				return ""
			}
			want := corev1.HostPathFile
			if m.MountPath != file {
				want = corev1.HostPathDirectory
				if h.Path == "/" || h.Path == "/etc" {
					t.Errorf("Volume %s: mounts %s of the node, which holds its secrets", v.Name, h.Path)
				}
			}
			if h.Type == nil || *h.Type != want {
				t.Errorf("Volume %s: hostPath type %q, want %s", v.Name, ptr.Deref(h.Type, "(none)"), want)
			}
			return strings.TrimPrefix(file, "/host")
		}
	}
	t.Errorf("node_search %s: no volume mounted there or at its directory", file)
	return ""
}

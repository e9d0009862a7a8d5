package artifacts

import (
	"slices"
	"testing"

	"github.com/raceguard/raceguard/test/testenv"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/utils/ptr"
)

// The chart's pod watch (podWatch, kubeletResolvConf, README.md "Exact lists from the API"): on by
// default with its three parts, a ClusterRole and binding of list and watch on pods and nothing
// else, the service account's token, and search pods reading the kubelet's resolv.conf from the
// node; podWatch.enabled=false removes all three (search infer). The grant follows the release's
// names and the service account, and observe-only mode never watches.

// rawPodsCorefile is a Corefile of one's own (the corefile value) with a pod watch.
const rawPodsCorefile = `corefile: |
  .:53 {
      bind 169.254.20.10 {$KUBE_DNS_SERVICE_HOST}
      nodelocal
      health 169.254.20.10:8080
      ready 169.254.20.10:8181
      raceguard {
          search pods
          node_search /host/etc/resolv.conf
      }
      forward . {$KUBE_DNS_UPSTREAM_SERVICE_HOST}
  }
`

// TestChartPodWatch renders and lints the chart with the pod watch on, off and moved about, and
// checks its three parts.
func TestChartPodWatch(t *testing.T) {
	chart := chartPath(t)
	const etc = "/etc/resolv.conf File at /host/etc/resolv.conf"
	for _, tc := range []struct {
		name, release, namespace string
		set                      []string
		values                   string
		search                   string // raceguard's search; "" for a Corefile of one's own
		role, account            string // the ClusterRole and the namespace/name bound to it; "" without a watch
		mount                    string // the kubelet's resolv.conf: node path, type, mount path (hostPathMount)
		nodeSearch               string
	}{
		{"defaults", "raceguard", "kube-system", nil, "", "pods", "raceguard-node-local-pods", "kube-system/raceguard-node-local", etc, "/host/etc/resolv.conf"},
		{"off", "raceguard", "kube-system", []string{"podWatch.enabled=false"}, "", "infer", "", "", etc, "/host/etc/resolv.conf"},
		{"search infer", "raceguard", "kube-system", []string{"raceguard.search=infer"}, "", "infer", "", "", etc, "/host/etc/resolv.conf"},
		{"release and account", "dns", "dns", []string{"kubeDNS.namespace=dns", "serviceAccount.name=dns-sa"}, "", "pods", "dns-raceguard-node-local-pods", "dns/dns-sa", etc, "/host/etc/resolv.conf"},
		{"existing account", "raceguard", "kube-system", []string{"serviceAccount.create=false", "serviceAccount.name=coredns"}, "", "pods", "raceguard-node-local-pods", "kube-system/coredns", etc, "/host/etc/resolv.conf"},
		{"systemd-resolved", "raceguard", "kube-system", []string{"kubeletResolvConf.path=/run/systemd/resolve/resolv.conf", "kubeletResolvConf.mountDirectory=true"}, "", "pods",
			"raceguard-node-local-pods", "kube-system/raceguard-node-local", "/run/systemd/resolve Directory at /host/run/systemd/resolve", "/host/run/systemd/resolve/resolv.conf"},
		{"systemd-resolved file", "raceguard", "kube-system", []string{"kubeletResolvConf.path=/run/systemd/resolve/resolv.conf"}, "", "pods",
			"raceguard-node-local-pods", "kube-system/raceguard-node-local", "/run/systemd/resolve/resolv.conf File at /host/run/systemd/resolve/resolv.conf", "/host/run/systemd/resolve/resolv.conf"},
		{"observe", "raceguard", "kube-system", []string{"observe=true"}, "", "infer", "", "", "", "/etc/resolv.conf"},
		{"own Corefile", "raceguard", "kube-system", nil, rawPodsCorefile, "", "raceguard-node-local-pods", "kube-system/raceguard-node-local", etc, "/host/etc/resolv.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files []string
			if tc.values != "" {
				files = []string{chartValuesFile(t, tc.values)}
			}
			lint := []string{"lint", "--strict", "--namespace", tc.namespace, chart}
			for _, f := range files {
				lint = append(lint, "--values", f)
			}
			for _, s := range tc.set {
				lint = append(lint, "--set", s)
			}
			if out, err := testenv.Helm(t, lint...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			b := mustTemplate(t, chart, tc.release, tc.namespace, files, tc.set...)
			ds := oneOf[*appsv1.DaemonSet](t, b)
			pod := ds.Spec.Template
			corefile := corefileOf(t, b, pod)
			if tc.search != "" {
				checkSearch(t, b, pod, tc.search)
			}
			if ns := directiveArgs(corefile, "node_search"); len(ns) != 1 || !slices.Equal(ns[0], []string{tc.nodeSearch}) {
				t.Errorf("node_search %v, want %s", ns, tc.nodeSearch)
			}
			if got := hostPathMount(pod, "kubelet-resolv-conf"); got != tc.mount {
				t.Errorf("The kubelet's resolv.conf: %q, want %q", got, tc.mount)
			}

			// The grant: exactly list and watch of pods, bound to the pod's service account.
			watch := tc.role != ""
			roles, bindings := objectsOf[*rbacv1.ClusterRole](b), objectsOf[*rbacv1.ClusterRoleBinding](b)
			switch {
			case !watch && len(roles)+len(bindings) > 0:
				t.Errorf("%d ClusterRoles and %d bindings without a pod watch, want none", len(roles), len(bindings))
			case watch && (len(roles) != 1 || len(bindings) != 1):
				t.Fatalf("%d ClusterRoles and %d bindings, want one of each", len(roles), len(bindings))
			case watch:
				want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}}}
				if r := roles[0]; r.Name != tc.role || !slices.EqualFunc(r.Rules, want, func(a, b rbacv1.PolicyRule) bool {
					return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) && slices.Equal(a.Verbs, b.Verbs) &&
						len(a.ResourceNames)+len(a.NonResourceURLs) == 0
				}) {
					t.Errorf("ClusterRole %s: rules %+v, want %s with list and watch of pods only", r.Name, r.Rules, tc.role)
				}
				crb := bindings[0]
				var subjects []string
				for _, s := range crb.Subjects {
					subjects = append(subjects, s.Kind+" "+s.Namespace+"/"+s.Name)
				}
				if crb.Name != tc.role || crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != tc.role ||
					!slices.Equal(subjects, []string{"ServiceAccount " + tc.account}) || tc.account != tc.namespace+"/"+pod.Spec.ServiceAccountName {
					t.Errorf("ClusterRoleBinding %s: %v to %v, want %s to ServiceAccount %s, the pod's (%s)", crb.Name, crb.RoleRef, subjects, tc.role, tc.account, pod.Spec.ServiceAccountName)
				}
			}

			// The token: mounted for the watch, not without it.
			if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a != watch {
				t.Errorf("DaemonSet: automountServiceAccountToken %v, want %v", ptr.Deref(a, true), watch)
			}
			for _, sa := range objectsOf[*corev1.ServiceAccount](b) {
				if a := sa.AutomountServiceAccountToken; a == nil || *a != watch {
					t.Errorf("ServiceAccount %s: automountServiceAccountToken %v, want %v", sa.Name, ptr.Deref(a, true), watch)
				}
			}
			want := 1
			if slices.Contains(tc.set, "serviceAccount.create=false") {
				want = 0
			}
			if n := len(objectsOf[*corev1.ServiceAccount](b)); n != want {
				t.Errorf("%d ServiceAccounts, want %d", n, want)
			}
		})
	}
}

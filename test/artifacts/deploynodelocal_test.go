package artifacts

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// checkNodeLocal checks the DaemonSet's node-level properties. clusterIP is what the Corefile
// must bind beside the link-local address in transparent mode ("" for link-local mode), upstream
// the Service of the kube-dns pods the server forwards to, which must be among b's.
func checkNodeLocal(t *testing.T, b *bundle, ds *appsv1.DaemonSet, clusterIP, upstream string) {
	t.Helper()
	corefile := checkNodeLocalDaemonSet(t, b, ds)
	spec := ds.Spec.Template.Spec

	// Transparent mode: the link-local address and the kube-dns ClusterIP, set up by nodelocal;
	// health and ready on the link-local address, its health port's probes out of conntrack.
	binds := directiveArgs(corefile, "bind")
	want := []string{"the link-local address"}
	if clusterIP != "" {
		want = append(want, clusterIP)
	}
	if len(binds) != 1 || len(binds[0]) != len(want) || (clusterIP != "" && binds[0][1] != clusterIP) {
		t.Fatalf("DaemonSet Corefile: want one bind with %s, got %v", strings.Join(want, " and "), binds)
	}
	ip := net.ParseIP(binds[0][0])
	if ip == nil || !ip.IsLinkLocalUnicast() {
		t.Errorf("DaemonSet Corefile: bind %v, want a link-local address first", binds[0])
	}
	_, healthPort := corefileListener(t, corefile, "health")
	for _, d := range []string{"health", "ready"} {
		if host, _ := corefileListener(t, corefile, d); host != binds[0][0] {
			t.Errorf("DaemonSet Corefile: %s on %q, want the bind address %s", d, host, binds[0][0])
		}
	}
	if nl := directiveArgs(corefile, "nodelocal"); len(nl) != 1 || len(nl[0]) != 0 {
		t.Errorf("DaemonSet Corefile: want nodelocal, once, without zones, got %v", nl)
	}
	if hp := directiveArgs(corefile, "health_port"); len(hp) != 1 || hp[0][0] != strconv.Itoa(healthPort) {
		t.Errorf("DaemonSet Corefile: want nodelocal's health_port %d, the health plugin's, got %v", healthPort, hp)
	}
	// Its upstream is kube-dns-upstream, a second Service of the kube-dns pods: the ClusterIP it
	// binds leads to itself. The kubelet gives the pod its address in the environment.
	hostVar := "{$" + strings.ToUpper(strings.ReplaceAll(upstream, "-", "_")) + "_SERVICE_HOST}"
	if fw := directiveArgs(corefile, "forward"); len(fw) != 1 || !slices.Equal(fw[0], []string{".", hostVar}) {
		t.Errorf("DaemonSet Corefile: want forward . %s, got %v", hostVar, fw)
	}
	checkUpstreamSockets(t, corefile)
	found := false
	for _, svc := range objectsOf[*corev1.Service](b) {
		if svc.Name != upstream {
			continue
		}
		found = svc.Namespace == "kube-system" && maps.Equal(svc.Spec.Selector, map[string]string{"k8s-app": "kube-dns"}) && len(svc.Spec.Ports) == 2
		for _, p := range svc.Spec.Ports {
			found = found && p.Port == 53 && p.TargetPort.IntValue() == 53
		}
	}
	if !found {
		t.Errorf("%s: want Service kube-system/%s selecting k8s-app: kube-dns on port 53, UDP and TCP", b.name, upstream)
	}

	// The API: no kubernetes plugin (kube-dns answers); at most the pod watch, of this node's
	// pods (checkRBAC holds its grant and token to it), with the node's resolv.conf as the
	// kubelet reads it.
	if len(directiveArgs(corefile, "kubernetes")) > 0 {
		t.Error("DaemonSet Corefile: uses the kubernetes plugin, which a node-local server leaves to kube-dns")
	}
	if podWatch(corefile) {
		checkKubeletResolvConf(t, ds.Spec.Template, corefile)
	}
	// The ClusterIPs come from the service-link environment.
	if strings.Contains(corefile, "_SERVICE_HOST}") && spec.EnableServiceLinks != nil && !*spec.EnableServiceLinks {
		t.Error("DaemonSet: the Corefile reads Service addresses from the environment, but service links are off")
	}
}

// kubeProxyDelay is how long kube-proxy may take to send no new flow to a deleted kube-dns pod: the
// EndpointSlice update and its sync (min-sync-period 1 s), with a margin.
const kubeProxyDelay = 2 * time.Second

// checkUpstreamSockets: no pooled socket of the forwarder to kube-dns lives longer than kube-dns's
// lameduck (deploy/cluster's, kubeadm's 5 s) less kubeProxyDelay. Each socket's conntrack entry keeps
// the kube-dns pod it was DNATed to while the socket is reused, and kube-proxy clears the UDP
// entries of a deleted pod only once it has stopped serving: a longer-lived socket follows the pod
// to its exit and is refused (the cluster lab's kube-dns churn lost lookups so).
func checkUpstreamSockets(t *testing.T, corefile string) {
	t.Helper()
	cluster := loadBundle(t, "cluster")
	lameduck := durationOption(t, corefileOf(t, cluster, oneOf[*appsv1.Deployment](t, cluster).Spec.Template), "lameduck")
	expire, maxAge := durationOption(t, corefile, "expire"), durationOption(t, corefile, "max_age")
	if maxAge == 0 || expire == 0 || expire > maxAge || maxAge+kubeProxyDelay > lameduck {
		t.Errorf("DaemonSet Corefile: forward's expire %s and max_age %s, want both set, expire <= max_age, and max_age at most %s (kube-dns's lameduck %s less %s for kube-proxy)",
			expire, maxAge, lameduck-kubeProxyDelay, lameduck, kubeProxyDelay)
	}
}

// durationOption returns the duration of the only line of corefile that starts with option, 0
// where there is none.
func durationOption(t *testing.T, corefile, option string) time.Duration {
	t.Helper()
	args := directiveArgs(corefile, option)
	if len(args) == 0 {
		return 0
	}
	if len(args) != 1 || len(args[0]) != 1 {
		t.Fatalf("Corefile: want one %s with one argument, got %v", option, args)
	}
	d, err := time.ParseDuration(args[0][0])
	if err != nil {
		t.Fatalf("Corefile: %s %s: %v", option, args[0][0], err)
	}
	return d
}

// checkNodeLocalDaemonSet checks what every node-local DaemonSet must have, in any mode, and
// returns its Corefile: hostNetwork, the capabilities, the rollout, the node name.
func checkNodeLocalDaemonSet(t *testing.T, b *bundle, ds *appsv1.DaemonSet) string {
	t.Helper()
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	corefile := corefileOf(t, b, ds.Spec.Template)
	if !spec.HostNetwork {
		t.Error("DaemonSet: want hostNetwork: conntrack statistics are per network namespace, and the race is in the node's")
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("DaemonSet: priorityClassName %q, want system-node-critical", spec.PriorityClassName)
	}
	tolerateAll := false
	for _, tol := range spec.Tolerations {
		tolerateAll = tolerateAll || (tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == "")
	}
	if !tolerateAll {
		t.Errorf("DaemonSet: want a toleration of every taint (operator Exists, no key), got %v", spec.Tolerations)
	}
	// Capabilities: NET_ADMIN for the netlink conntrack reader, NET_BIND_SERVICE for :53, and
	// root, because Kubernetes gives a non-root process no added capability (see the manifest).
	sc := c.SecurityContext
	if caps := sc.Capabilities.Add; !slices.Equal(caps, []corev1.Capability{"NET_ADMIN", "NET_BIND_SERVICE"}) {
		t.Errorf("DaemonSet: capabilities add %v, want exactly [NET_ADMIN NET_BIND_SERVICE]", caps)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.RunAsNonRoot == nil || *sc.RunAsNonRoot {
		t.Error("DaemonSet: want runAsUser 0 and runAsNonRoot false: as a non-root user the added NET_ADMIN never reaches the process")
	}
	if len(directiveArgs(corefile, "raceguard")) != 1 || strings.Contains(corefile, "conntrack off") || strings.Contains(corefile, "conntrack procfs") {
		t.Error("DaemonSet Corefile: want raceguard with the netlink conntrack reader the NET_ADMIN capability is for")
	}
	nodeName := false
	for _, e := range c.Env {
		nodeName = nodeName || (e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName")
	}
	if !nodeName {
		t.Error("DaemonSet: want NODE_NAME from the downward API (fieldRef spec.nodeName), raceguard's node label")
	}

	// Rollout: the new pod starts beside the old one, sharing its sockets (SO_REUSEPORT).
	u := ds.Spec.UpdateStrategy
	if u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil ||
		u.RollingUpdate.MaxUnavailable == nil || u.RollingUpdate.MaxUnavailable.String() != "0" ||
		u.RollingUpdate.MaxSurge == nil || u.RollingUpdate.MaxSurge.String() == "0" {
		t.Errorf("DaemonSet: want a RollingUpdate with maxUnavailable 0 and a maxSurge, got %+v", u.RollingUpdate)
	}
	if len(c.Ports) > 0 {
		t.Error("DaemonSet: declares container ports, which hostNetwork turns into hostPorts: the surge pod would never be scheduled")
	}

	return corefile
}

// checkObserveBundle runs every check of the observe-only variant on b (deploy/node-local-observe,
// or the chart rendered with observe=true) and returns the pod template: the node-local DaemonSet,
// under the transparent variant's name, whose Corefile binds one link-local address of its own,
// has nodelocal with capture off, forwards to the kube-dns ClusterIP, and needs no upstream
// Service.
func checkObserveBundle(t *testing.T, b *bundle) corev1.PodTemplateSpec {
	t.Helper()
	checkNamespaces(t, b)
	ds := oneOf[*appsv1.DaemonSet](t, b)
	pod := ds.Spec.Template
	checkSelects(t, "DaemonSet selector", ds.Spec.Selector, pod.Labels)
	corefile := checkNodeLocalDaemonSet(t, b, ds)
	checkBuiltIn(t, b)
	checkPod(t, b, pod)
	checkRBAC(t, b, pod, corefile)
	if !strings.HasSuffix(ds.Name, "-node-local") {
		t.Errorf("DaemonSet %s: want the transparent variant's name, so that applying one replaces the other", ds.Name)
	}
	binds := directiveArgs(corefile, "bind")
	if len(binds) != 1 || len(binds[0]) != 1 {
		t.Fatalf("Observe Corefile: want one bind with one address, got %v", binds)
	}
	ip := net.ParseIP(binds[0][0])
	if ip == nil || !ip.IsLinkLocalUnicast() || binds[0][0] == "169.254.20.10" {
		t.Errorf("Observe Corefile: bind %v, want a link-local address of its own, not NodeLocal DNSCache's 169.254.20.10", binds[0])
	}
	for _, d := range []string{"health", "ready"} {
		if host, _ := corefileListener(t, corefile, d); host != binds[0][0] {
			t.Errorf("Observe Corefile: %s on %q, want the bind address %s", d, host, binds[0][0])
		}
	}
	if capture := directiveArgs(corefile, "capture"); len(directiveArgs(corefile, "nodelocal")) != 1 || len(capture) != 1 || !slices.Equal(capture[0], []string{"off"}) {
		t.Errorf("Observe Corefile: want nodelocal with capture off, got %v", capture)
	}
	if fw := directiveArgs(corefile, "forward"); len(fw) != 1 || !slices.Equal(fw[0], []string{".", "{$KUBE_DNS_SERVICE_HOST}"}) {
		t.Errorf("Observe Corefile: want forward . {$KUBE_DNS_SERVICE_HOST}, the kube-dns ClusterIP, got %v", fw)
	}
	for _, svc := range objectsOf[*corev1.Service](b) {
		if len(svc.Spec.Selector) > 0 && svc.Spec.Selector["k8s-app"] == "kube-dns" {
			t.Errorf("%s: Service %s selects kube-dns's pods: observe-only needs no upstream Service", b.name, svc.Name)
		}
	}
	for _, cm := range objectsOf[*corev1.ConfigMap](b) {
		if cm.Name == ds.Name {
			t.Errorf("ConfigMap %s: the transparent variant's name; a switch would reload the running pods' Corefile under them", cm.Name)
		}
	}
	return pod
}

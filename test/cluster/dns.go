package cluster

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/raceguard/raceguard/test/lab"
)

// KubeDNSFiles are deploy/cluster's manifests, which InstallKubeDNS applies.
var KubeDNSFiles = []string{
	"deploy/cluster/rbac.yaml", "deploy/cluster/configmap.yaml", "deploy/cluster/service.yaml",
	"deploy/cluster/deployment.yaml", "deploy/cluster/poddisruptionbudget.yaml",
}

// InstallKubeDNS applies deploy/cluster to the API server: kube-dns's Service (10.96.0.10),
// ConfigMap, Deployment and RBAC. No pod runs until RunKubeDNS.
func (c *Cluster) InstallKubeDNS(ctx context.Context) error {
	return c.ApplyFiles(ctx, "kube-system", KubeDNSFiles...)
}

// The blocks of the plugins that talk to the API server, and raceguard's block and collapse's
// line.
var (
	kubernetesBlock = regexp.MustCompile(`(?m)^(\s*)kubernetes [^\n{]*\{\n`)
	raceguardPods   = regexp.MustCompile(`(?m)^(\s*)search pods\n`)
	raceguardBlock  = regexp.MustCompile(`(?m)^\s*raceguard \{\n(?:[^}]*\n)*?\s*\}\n`)
	collapseLine    = regexp.MustCompile(`(?m)^\s*collapse\n`)
)

// KubeDNSCorefile returns the kube-dns Corefile as the ConfigMap in the API server holds it. stock
// takes raceguard's block and collapse out: the Corefile of the Kubernetes addon manifest
// (cluster/addons/dns/coredns), the stock kube-dns.
func (c *Cluster) KubeDNSCorefile(ctx context.Context, stock bool) (string, error) {
	text, err := c.ConfigMapData(ctx, "kube-system", "coredns", "Corefile")
	if err != nil {
		return "", err
	}
	if stock {
		return WithoutRaceguard(text)
	}
	return text, nil
}

// WithoutRaceguard takes raceguard's block and collapse's line out of a Corefile.
func WithoutRaceguard(corefile string) (string, error) {
	if !raceguardBlock.MatchString(corefile) || !collapseLine.MatchString(corefile) {
		return "", fmt.Errorf("no raceguard block or collapse line in:\n%s", corefile)
	}
	return collapseLine.ReplaceAllString(raceguardBlock.ReplaceAllString(corefile, ""), ""), nil
}

// containerCorefile is a pod's Corefile as its container sees it, for a container of the lab,
// which has no mount namespace of its own: a path under the mount of a hostPath volume names the
// node's own file instead (the node's resolv.conf; no other hostPath is known), and the plugins
// that talk to the API server (kubernetes, and raceguard's search pods) get a kubeconfig line
// with the token of the pod's ServiceAccount, in place of the one the kubelet would mount, and
// the API server's own address in place of the kubernetes Service's.
func (n *Node) containerCorefile(spec corev1.PodSpec, corefile string) (string, error) {
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range spec.Containers[0].VolumeMounts {
		v := volumes[m.Name]
		if v.HostPath == nil {
			continue
		}
		if v.HostPath.Path != "/etc/resolv.conf" {
			return "", fmt.Errorf("hostPath volume %s (%s): the lab's nodes have no such file", v.Name, v.HostPath.Path)
		}
		corefile = strings.ReplaceAll(corefile, m.MountPath, n.ResolvConf)
	}
	if !kubernetesBlock.MatchString(corefile) && !raceguardPods.MatchString(corefile) {
		return corefile, nil
	}
	kc, err := n.c.ServiceAccountKubeconfig("kube-system", spec.ServiceAccountName)
	if err != nil {
		return "", err
	}
	corefile = kubernetesBlock.ReplaceAllString(corefile, "${0}${1}    kubeconfig "+kc+"\n")
	return raceguardPods.ReplaceAllString(corefile, "${0}${1}kubeconfig "+kc+"\n"), nil
}

// RunKubeDNS runs a replica of kube-dns (a pod of deploy/cluster's Deployment, as its ReplicaSet
// makes it) named name on node n with corefile, and waits until it is Ready.
func (n *Node) RunKubeDNS(ctx context.Context, name, corefile string) (*Pod, error) {
	d, err := n.c.Client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return n.runTemplate(ctx, name, d.Spec.Template, corefile)
}

// runTemplate runs a pod of template named name on n, starts its container on corefile with
// its securityContext's user and capabilities, and waits until it is Ready.
func (n *Node) runTemplate(ctx context.Context, name string, tmpl corev1.PodTemplateSpec, corefile string) (*Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", Labels: tmpl.Labels, Annotations: tmpl.Annotations},
		Spec:       tmpl.Spec,
	}
	p, err := n.RunPod(ctx, pod, false)
	if err != nil {
		return p, err
	}
	if err := p.StartCoreDNS(ctx, corefile); err != nil {
		return p, err
	}
	if err := p.WaitReady(ctx, 60*time.Second); err != nil {
		return p, err
	}
	return p, nil
}

// securityWrap returns the setpriv command that runs a container's process as its
// securityContext says: its user and group, no new privileges, and only the capabilities it adds
// (the rest dropped, as "drop: [ALL]" in every manifest of the project asks).
func securityWrap(c corev1.Container) []string {
	sc := c.SecurityContext
	if sc == nil {
		return nil
	}
	var caps []string
	if sc.Capabilities != nil {
		for _, cp := range sc.Capabilities.Add {
			caps = append(caps, "+"+strings.ToLower(string(cp)))
		}
	}
	set := "-all"
	if len(caps) > 0 {
		set += "," + strings.Join(caps, ",")
	}
	w := []string{"setpriv", "--bounding-set", set, "--inh-caps", set}
	if sc.RunAsUser != nil && *sc.RunAsUser != 0 {
		w = append(w, "--reuid", fmt.Sprint(*sc.RunAsUser))
		if len(caps) > 0 {
			w = append(w, "--ambient-caps", set)
		}
	}
	if sc.RunAsGroup != nil {
		w = append(w, "--regid", fmt.Sprint(*sc.RunAsGroup), "--clear-groups")
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		w = append(w, "--no-new-privs")
	}
	return w
}

// NodeLocalRelease is the Helm release name of the node-local server, as the chart's comments
// install it (`helm install raceguard charts/raceguard -n kube-system`).
const NodeLocalRelease = "raceguard"

// InstallNodeLocal applies rendered, the output of `helm template raceguard charts/raceguard -n
// kube-system`, to the API server: the kube-dns-upstream Service, the node-local Corefile's
// ConfigMap, the DaemonSet. No pod runs until RunNodeLocal.
func (c *Cluster) InstallNodeLocal(ctx context.Context, rendered []byte) error {
	return c.Apply(ctx, "kube-system", rendered)
}

// NodeLocalCorefile returns the node-local Corefile from the chart's ConfigMap.
func (c *Cluster) NodeLocalCorefile(ctx context.Context) (string, error) {
	return c.ConfigMapData(ctx, "kube-system", NodeLocalRelease+"-node-local", "Corefile")
}

// RunNodeLocal runs a pod of the node-local DaemonSet named name on n, on the host network, with
// corefile ("" for the chart's ConfigMap's), and returns once its process started, without
// waiting for its readiness (WaitReady).
func (n *Node) RunNodeLocal(ctx context.Context, name, corefile string) (*Pod, error) {
	ds, err := n.c.Client.AppsV1().DaemonSets("kube-system").Get(ctx, NodeLocalRelease+"-node-local", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if corefile == "" {
		if corefile, err = n.c.NodeLocalCorefile(ctx); err != nil {
			return nil, err
		}
	}
	tmpl := ds.Spec.Template
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ds.Namespace, Labels: tmpl.Labels, Annotations: tmpl.Annotations},
		Spec:       tmpl.Spec,
	}
	p, err := n.RunPod(ctx, pod, false)
	if err != nil {
		return p, err
	}
	return p, p.StartCoreDNS(ctx, corefile)
}

// probeDNS asks the DNS server at addr (host:port), from namespace ns, for kubernetes.default's
// address and returns an error unless it answers NOERROR.
func probeDNS(ns, addr string) error {
	m := new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	r, err := lab.Exchange(ns, "udp", addr, m, time.Second)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("%s: %s", addr, dns.RcodeToString[r.Rcode])
	}
	return nil
}

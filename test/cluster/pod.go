package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/raceguard/raceguard/test/lab"
)

// Pod is a pod the node's kubelet (this package) runs: a network namespace of its own (the
// node's, for hostNetwork), with the resolv.conf the kubelet's code writes for its Pod object.
type Pod struct {
	Name, Namespace string
	Node            *Node
	NS              string // its network namespace
	IP              string
	ResolvConf      string // its resolv.conf, as the runtime writes it
	Obj             *corev1.Pod

	proc   *lab.Process // its container, once started
	starts int          // its container's starts, which name its log
	link   string       // the node's end of its veth
}

// RunPod is the scheduler and the kubelet for pod on node n: it creates the Pod object with
// spec.nodeName n, makes the pod's sandbox (a namespace and an address), writes its resolv.conf
// with the kubelet's code from the object the API server returns (defaults applied), and reports
// it Running; Ready is ready. The pod's container, if any, is started with StartCoreDNS.
func (n *Node) RunPod(ctx context.Context, pod *corev1.Pod, ready bool) (*Pod, error) {
	pod = pod.DeepCopy()
	pod.Spec.NodeName = n.Name
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	obj, err := n.c.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	p := &Pod{Name: obj.Name, Namespace: obj.Namespace, Node: n, Obj: obj}
	n.pods = append(n.pods, p)
	if obj.Spec.HostNetwork {
		p.NS, p.IP = n.NS, n.IP
	} else {
		n.podN++
		if n.podN > 250 {
			return nil, fmt.Errorf("%s: no pod address left", n.Name)
		}
		p.IP = fmt.Sprintf("10.244.%d.%d", n.Index, n.podN)
		p.NS = fmt.Sprintf("%s-%d", n.NS, n.podN)
		p.link = fmt.Sprintf("rgp%d", n.podN)
		if err := p.sandbox(); err != nil {
			return p, err
		}
	}
	if err := p.writeResolvConf(); err != nil {
		return p, err
	}
	return p, p.SetStatus(ctx, ready)
}

// sandbox makes the pod's namespace and its veth, routed Calico-style: the pod's /32 on its
// eth0, the node's end without an address of its own beyond the gateway, a route to each.
// The pod also gets an IPv6 address, so that glibc's AI_ADDRCONFIG asks AAAA too.
func (p *Pod) sandbox() error {
	n := p.Node
	if err := lab.AddNamespace(p.NS); err != nil {
		return err
	}
	v6 := fmt.Sprintf("fd00:10:244:%d::%d/64", n.Index, n.podN)
	for _, s := range [][]string{
		{"-n", n.NS, "link", "add", p.link, "type", "veth", "peer", "name", "eth0", "netns", p.NS},
		{"-n", n.NS, "addr", "add", n.Gateway() + "/32", "dev", p.link},
		{"-n", n.NS, "link", "set", p.link, "up"},
		{"-n", n.NS, "route", "add", p.IP + "/32", "dev", p.link},
		{"-n", p.NS, "addr", "add", p.IP + "/32", "dev", "eth0"},
		{"-n", p.NS, "addr", "add", v6, "dev", "eth0", "nodad"},
		{"-n", p.NS, "link", "set", "eth0", "up"},
		{"-n", p.NS, "route", "add", n.Gateway(), "dev", "eth0"},
		{"-n", p.NS, "route", "add", "default", "via", n.Gateway(), "dev", "eth0"},
	} {
		if err := lab.IP(s...); err != nil {
			return err
		}
	}
	return nil
}

// writeResolvConf writes the resolv.conf podconf computes for the pod, with the kubelet's code,
// from the Pod object, the node's resolv.conf and the kubelet's clusterDNS.
func (p *Pod) writeResolvConf() error {
	n := p.Node
	podFile, err := n.c.writeJSON(p.NS+"-"+p.Name+".pod.json", p.Obj)
	if err != nil {
		return err
	}
	out, err := n.c.podconf("resolv", "-pod", podFile, "-resolv-conf", n.ResolvConf,
		"-cluster-dns", strings.Join(n.ClusterDNS, ","), "-cluster-domain", "cluster.local", "-node-ip", n.IP)
	if err != nil {
		return err
	}
	p.ResolvConf = filepath.Join(n.c.Dir, p.NS+"-"+p.Name+".resolv.conf")
	if err := os.WriteFile(p.ResolvConf, []byte(out), 0o644); err != nil {
		return err
	}
	if p.NS != n.NS {
		return lab.WriteResolvConf(p.NS, out)
	}
	return nil
}

// podconf runs the podconf program and returns its output.
func (c *Cluster) podconf(args ...string) (string, error) {
	cmd := exec.Command(c.Bins["podconf"], args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("podconf %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// ResolvConfText returns the pod's resolv.conf.
func (p *Pod) ResolvConfText() string {
	b, _ := os.ReadFile(p.ResolvConf)
	return string(b)
}

// Client is where the pod's lookups run: its namespace, with its resolv.conf bound over the
// node's for a hostNetwork pod.
func (p *Pod) Client() lab.Client {
	if p.NS == p.Node.NS {
		return lab.Client{NS: p.NS, ResolvConf: p.ResolvConf}
	}
	return lab.Client{NS: p.NS}
}

// Lookup resolves names in the pod with libc's getaddrinfo.
func (p *Pod) Lookup(libc lab.Libc, family lab.Family, workers int, names ...string) ([]lab.Result, error) {
	return p.Client().Lookup(libc, family, workers, names...)
}

// SetStatus writes the pod's status as the kubelet does: Running, its IPs, and Ready or not.
func (p *Pod) SetStatus(ctx context.Context, ready bool) error {
	api := p.Node.c.Client.CoreV1().Pods(p.Namespace)
	for try := 0; ; try++ {
		obj, err := api.Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cond := corev1.ConditionFalse
		if ready {
			cond = corev1.ConditionTrue
		}
		now := metav1.Now()
		obj.Status.Phase = corev1.PodRunning
		obj.Status.HostIP, obj.Status.HostIPs = p.Node.IP, []corev1.HostIP{{IP: p.Node.IP}}
		obj.Status.PodIP, obj.Status.PodIPs = p.IP, []corev1.PodIP{{IP: p.IP}}
		if obj.Status.StartTime == nil {
			obj.Status.StartTime = &now
		}
		obj.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: cond, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: cond, LastTransitionTime: now},
		}
		obj.Status.ContainerStatuses = nil
		for _, c := range obj.Spec.Containers {
			obj.Status.ContainerStatuses = append(obj.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, Ready: ready, Started: &ready,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
		obj, err = api.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && try < 5 {
			continue
		}
		if err != nil {
			return err
		}
		p.Obj = obj
		return nil
	}
}

// StartCoreDNS starts the pod's container: the project's CoreDNS on corefile (the container's
// ConfigMap, as the caller read it, with the lab's paths and tokens: containerCorefile), in the
// pod's namespace, with the environment the kubelet
// gives the container (podconf env: its env entries and the service links of the Services that
// exist now), as the user and with the capabilities of its securityContext. It returns once the process started; WaitReady waits for its readiness probe.
func (p *Pod) StartCoreDNS(ctx context.Context, corefile string) error {
	if p.proc != nil {
		return fmt.Errorf("pod %s/%s: its container runs", p.Namespace, p.Name)
	}
	c := p.Node.c
	corefile, err := p.Node.containerCorefile(p.Obj.Spec, corefile)
	if err != nil {
		return err
	}
	services, err := c.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	svcFile, err := c.writeJSON(p.NS+"-"+p.Name+".services.json", services)
	if err != nil {
		return err
	}
	podFile := filepath.Join(c.Dir, p.NS+"-"+p.Name+".pod.json")
	out, err := c.podconf("env", "-pod", podFile, "-services", svcFile, "-container", p.Obj.Spec.Containers[0].Name)
	if err != nil {
		return err
	}
	env := strings.Split(strings.TrimSpace(out), "\n")
	p.starts++
	name := fmt.Sprintf("%s-%s-%d", p.NS, p.Name, p.starts)
	proc, err := lab.StartCoreDNS(p.NS, c.CoreDNS, c.Dir, name, corefile, env, securityWrap(p.Obj.Spec.Containers[0])...)
	if err != nil {
		return err
	}
	p.proc = proc
	return nil
}

// Env returns the environment the pod's container was started with (podconf env's output), read
// back from the process.
func (p *Pod) Env() ([]string, error) {
	if p.proc == nil {
		return nil, fmt.Errorf("pod %s/%s runs no container", p.Namespace, p.Name)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.proc.Pid()))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// Proc returns the pod's container process, nil if none runs.
func (p *Pod) Proc() *lab.Process { return p.proc }

// Log returns what the pod's container logged.
func (p *Pod) Log() string {
	if p.proc == nil {
		return ""
	}
	return p.proc.Log()
}

// WaitReady probes the container's readinessProbe (an HTTP GET, from the node's namespace, as the
// kubelet does) until it answers 200, at most timeout, then reports the pod Ready.
func (p *Pod) WaitReady(ctx context.Context, timeout time.Duration) error {
	if err := p.probe(timeout); err != nil {
		return err
	}
	return p.SetStatus(ctx, true)
}

// probe waits for the container's readiness probe to pass.
func (p *Pod) probe(timeout time.Duration) error {
	c := p.Obj.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil {
		return fmt.Errorf("pod %s/%s: container %s has no HTTP readiness probe", p.Namespace, p.Name, c.Name)
	}
	g := c.ReadinessProbe.HTTPGet
	host := g.Host
	if host == "" {
		host = p.IP
	}
	port := g.Port.IntValue()
	if g.Port.Type == intstr.String {
		for _, cp := range c.Ports {
			if cp.Name == g.Port.StrVal {
				port = int(cp.ContainerPort)
			}
		}
	}
	return waitHTTP(p.Node.NS, fmt.Sprintf("http://%s:%d%s", host, port, g.Path), p.proc, timeout)
}

// Kill kills the pod's container with SIGKILL, as the OOM killer does, and waits for it.
func (p *Pod) Kill() {
	if p.proc != nil {
		p.proc.Kill()
	}
}

// Restart starts the container again on corefile after it died, as the kubelet restarts a
// container, and waits for its readiness.
func (p *Pod) Restart(ctx context.Context, corefile string, timeout time.Duration) error {
	if p.proc != nil && !p.proc.Exited() {
		return fmt.Errorf("pod %s/%s: its container still runs", p.Namespace, p.Name)
	}
	p.proc = nil
	if err := p.StartCoreDNS(ctx, corefile); err != nil {
		return err
	}
	return p.WaitReady(ctx, timeout)
}

// Delete deletes the pod as the API server and the kubelet do together: the object is marked for
// deletion (the endpointslice controller takes it out of its Services), the container gets
// SIGTERM and at most its grace period to stop, then the object is removed and the sandbox torn
// down. It returns once all of that is done.
func (p *Pod) Delete(ctx context.Context) error {
	api := p.Node.c.Client.CoreV1().Pods(p.Namespace)
	grace := int64(30)
	if g := p.Obj.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	if err := api.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		return err
	}
	if p.proc != nil {
		p.proc.StopWithin(time.Duration(grace) * time.Second)
	}
	return p.remove(ctx)
}

// remove kills the container, removes the object at once and tears the sandbox down.
func (p *Pod) remove(ctx context.Context) error {
	if p.proc != nil {
		p.proc.Kill()
	}
	zero := int64(0)
	err := p.Node.c.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if apierrors.IsNotFound(err) {
		err = nil
	}
	if p.NS != p.Node.NS {
		lab.RemoveNamespace(p.NS)
	}
	n := p.Node
	for i, q := range n.pods {
		if q == p {
			n.pods = append(n.pods[:i], n.pods[i+1:]...)
			break
		}
	}
	return err
}

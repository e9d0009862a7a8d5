package lab

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/raceguard/raceguard/test/kubeapi"
	corev1 "k8s.io/api/core/v1"
)

// StartKubeAPI serves a fake Kubernetes API for c on the node's bridge address, where the DNS
// servers reach it, and makes its kubeconfig the CorefileData.Kubeconfig of later StartDNS calls.
func (l *Lab) StartKubeAPI(c kubeapi.Cluster) error {
	var ln net.Listener
	if err := Do(l.Node, func() (err error) {
		ln, err = net.Listen("tcp", "10.32.0.1:0")
		return err
	}); err != nil {
		return err
	}
	api := kubeapi.Serve(ln, c)
	path, err := api.WriteKubeconfig(l.dir)
	if err != nil {
		api.Close()
		return err
	}
	l.api, l.kubeconfig = api, path
	return nil
}

// LabNode is the node of the lab's pods, and the node a node-local server serves.
const LabNode = "lab-node"

// ClientPod returns the lab client as a pod whose resolv.conf the kubelet writes as rc: a pod of
// namespace default with dnsPolicy None, rc's nameserver, search domains and options as its
// dnsConfig, on LabNode, at the client's two addresses.
func ClientPod(rc ResolvConf) kubeapi.Pod {
	cfg := &corev1.PodDNSConfig{Nameservers: []string{rc.Nameserver}, Searches: slices.Clone(rc.Search)}
	for _, o := range rc.Options {
		name, value, ok := strings.Cut(o, ":")
		opt := corev1.PodDNSConfigOption{Name: name}
		if ok {
			opt.Value = &value
		}
		cfg.Options = append(cfg.Options, opt)
	}
	return kubeapi.Pod{Namespace: PodNamespace, Name: "client", IP: ClientIPv4, MoreIPs: []string{ClientIPv6},
		Node: LabNode, DNSPolicy: corev1.DNSNone, DNSConfig: cfg}
}

// SetClientPod makes the lab's Kubernetes API (started here if StartKubeAPI has not run) hold
// the lab client as ClientPod(rc), for a node-local server's pod watch (PodWatchOptions). Set it
// before the server starts, so that its first list has it.
func (l *Lab) SetClientPod(rc ResolvConf) error { return l.PutPod(ClientPod(rc)) }

// PutPod makes the lab's Kubernetes API (started here if StartKubeAPI has not run) hold p, on
// LabNode unless it names a node.
func (l *Lab) PutPod(p kubeapi.Pod) error {
	if l.api == nil {
		if err := l.StartKubeAPI(kubeapi.Sample()); err != nil {
			return err
		}
	}
	if p.Node == "" {
		p.Node = LabNode
	}
	l.api.PutPod(p.Object())
	return nil
}

// PodWatchOptions are the raceguard options of a node-local server that completes with the lab
// pods' exact lists, from the pod watch of LabNode through the lab's Kubernetes API.
const PodWatchOptions = "node_local on\n        search pods\n        kubeconfig {{.Kubeconfig}}\n        node " + LabNode

// Kubeconfig returns the kubeconfig of the lab's Kubernetes API, "" before it started.
func (l *Lab) Kubeconfig() string { return l.kubeconfig }

// WaitPodWatch waits until the node-local server's pod watch answers lookups
// (coredns_raceguard_pod_watch_up 1), 10 s at most.
func (l *Lab) WaitPodWatch() error { return WaitPodWatchAt(l.Node, NodeIP+":9153") }

// WaitPodWatchAt waits until the pod watch of the server whose metrics are at addr, in the
// namespace ns, answers lookups, 10 s at most.
func WaitPodWatchAt(ns, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		text, err := ScrapeURL(ns, "http://"+addr+"/metrics")
		if err == nil && ParseMetrics(text).Sum("coredns_raceguard_pod_watch_up", nil) == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the node-local server's pod watch did not sync in 10 s (last scrape: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartNodeDNSFor is StartNodeDNS for the lab client as a pod whose resolv.conf is rc: it puts
// the pod in the lab's Kubernetes API first, and waits for the server's pod watch (corefile has
// PodWatchOptions).
func (l *Lab) StartNodeDNSFor(corefile string, rc ResolvConf, wrap ...string) (*Process, error) {
	if err := l.SetClientPod(rc); err != nil {
		return nil, err
	}
	p, err := l.StartNodeDNS(corefile, wrap...)
	if err != nil {
		return nil, err
	}
	if err := l.WaitPodWatch(); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

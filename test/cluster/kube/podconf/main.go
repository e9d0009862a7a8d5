// Command podconf prints what the kubelet gives a pod's container, computed by the kubelet's own
// code from the Pod object as the API server holds it:
//
//	podconf resolv -pod pod.json -resolv-conf FILE -cluster-dns 10.96.0.10 -node-ip IP
//	podconf env -pod pod.json -services services.json -container NAME
//
// resolv prints the pod's resolv.conf: the kubelet's DNS configurer
// (k8s.io/kubernetes/pkg/kubelet/network/dns, which the kubelet calls for every pod sandbox) turns
// the pod's dnsPolicy and dnsConfig and the node's resolv.conf into the DNS config the kubelet
// hands the container runtime, written as containerd writes it (search, nameserver and options
// lines, in that order: parseDNSOptions in its CRI plugin).
//
// env prints the container's environment, one NAME=VALUE a line: its env entries (values, and
// fieldRefs read with k8s.io/kubernetes/pkg/fieldpath as the kubelet does), after the service
// links of the Services (a v1.ServiceList) the kubelet selects for the pod (getServiceEnvVarMap:
// the default namespace's kubernetes Service, and, with enableServiceLinks, every Service with a
// ClusterIP in the pod's namespace), made by k8s.io/kubernetes/pkg/kubelet/envvars.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	podshelper "k8s.io/kubernetes/pkg/apis/core/pods"
	v1helper "k8s.io/kubernetes/pkg/apis/core/v1/helper"
	"k8s.io/kubernetes/pkg/fieldpath"
	"k8s.io/kubernetes/pkg/kubelet/envvars"
	"k8s.io/kubernetes/pkg/kubelet/network/dns"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: podconf resolv|env [flags]")
		os.Exit(2)
	}
	var out string
	var err error
	switch os.Args[1] {
	case "resolv":
		out, err = resolv(os.Args[2:])
	case "env":
		out, err = env(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "podconf:", err)
		os.Exit(1)
	}
	fmt.Print(out)
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

func resolv(args []string) (string, error) {
	fs := flag.NewFlagSet("resolv", flag.ContinueOnError)
	podFile := fs.String("pod", "", "the Pod object as JSON")
	resolvConf := fs.String("resolv-conf", "/etc/resolv.conf", "the node's resolv.conf (the kubelet's resolvConf)")
	clusterDNS := fs.String("cluster-dns", "10.96.0.10", "the kubelet's clusterDNS, comma separated")
	clusterDomain := fs.String("cluster-domain", "cluster.local", "the kubelet's clusterDomain")
	nodeIP := fs.String("node-ip", "", "the node's IP")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	pod := &v1.Pod{}
	if err := readJSON(*podFile, pod); err != nil {
		return "", err
	}
	var servers []net.IP
	for _, s := range strings.Split(*clusterDNS, ",") {
		if s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return "", fmt.Errorf("cluster-dns: not an IP: %q", s)
		}
		servers = append(servers, ip)
	}
	var nodeIPs []net.IP
	if *nodeIP != "" {
		ip := net.ParseIP(*nodeIP)
		if ip == nil {
			return "", fmt.Errorf("node-ip: not an IP: %q", *nodeIP)
		}
		nodeIPs = append(nodeIPs, ip)
	}
	node := &v1.ObjectReference{Kind: "Node", Name: pod.Spec.NodeName}
	c := dns.NewConfigurer(record.NewFakeRecorder(16), node, nodeIPs, servers, *clusterDomain, *resolvConf)
	cfg, err := c.GetPodDNS(context.Background(), pod)
	if err != nil {
		return "", err
	}
	return format(cfg), nil
}

// format writes the runtime's resolv.conf as containerd does (parseDNSOptions in its CRI plugin).
func format(cfg *runtimeapi.DNSConfig) string {
	var b strings.Builder
	if len(cfg.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(cfg.Searches, " "))
	}
	if len(cfg.Servers) > 0 {
		fmt.Fprintf(&b, "nameserver %s\n", strings.Join(cfg.Servers, "\nnameserver "))
	}
	if len(cfg.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(cfg.Options, " "))
	}
	return b.String()
}

// masterServices are the default namespace's Services every pod gets links to (the kubelet's).
var masterServices = map[string]bool{"kubernetes": true}

func env(args []string) (string, error) {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	podFile := fs.String("pod", "", "the Pod object as JSON")
	servicesFile := fs.String("services", "", "every Service of the cluster, as a v1.ServiceList in JSON")
	container := fs.String("container", "", "the container's name (the first one when empty)")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	pod := &v1.Pod{}
	if err := readJSON(*podFile, pod); err != nil {
		return "", err
	}
	list := &v1.ServiceList{}
	if err := readJSON(*servicesFile, list); err != nil {
		return "", err
	}
	var c *v1.Container
	for i := range pod.Spec.Containers {
		if *container == "" || pod.Spec.Containers[i].Name == *container {
			c = &pod.Spec.Containers[i]
			break
		}
	}
	if c == nil {
		return "", fmt.Errorf("pod %s/%s has no container %q", pod.Namespace, pod.Name, *container)
	}

	// getServiceEnvVarMap.
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	chosen := map[string]*v1.Service{}
	for i := range list.Items {
		s := &list.Items[i]
		if !v1helper.IsServiceIPSet(s) {
			continue
		}
		if s.Namespace == "default" && masterServices[s.Name] {
			if _, ok := chosen[s.Name]; !ok {
				chosen[s.Name] = s
			}
		} else if s.Namespace == pod.Namespace && links {
			chosen[s.Name] = s
		}
	}
	var services []*v1.Service
	for _, s := range chosen {
		services = append(services, s)
	}
	vars := map[string]string{}
	for _, e := range envvars.FromServices(services) {
		vars[e.Name] = e.Value
	}

	// makeEnvironmentVariables: the container's own entries after the service links.
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			vars[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			v, err := fieldRef(pod, e.ValueFrom.FieldRef)
			if err != nil {
				return "", fmt.Errorf("env %s: %w", e.Name, err)
			}
			vars[e.Name] = v
		default:
			return "", errors.New("env " + e.Name + ": only values and fieldRefs are supported")
		}
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "%s=%s\n", k, vars[k])
	}
	return b.String(), nil
}

// fieldRef is the kubelet's podFieldSelectorRuntimeValue: the fields only the kubelet knows
// from the pod's spec and status, the rest through fieldpath.
func fieldRef(pod *v1.Pod, fs *v1.ObjectFieldSelector) (string, error) {
	path, _, err := podshelper.ConvertDownwardAPIFieldLabel(fs.APIVersion, fs.FieldPath, "")
	if err != nil {
		return "", err
	}
	switch path {
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	}
	return fieldpath.ExtractFieldPathAsString(pod, path)
}

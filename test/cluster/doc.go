/*
Package cluster is a Kubernetes cluster of real components in network namespaces, for the
proof that raceguard's node-local server holds against the real kube-proxy, a real API server and
the kubelet's own pod DNS code, and the tests that give it (make cluster-test).

	net (10.40.0.1 on br0): the network between the nodes, and the control plane on it:
	    etcd, kube-apiserver (10.40.0.1:6443), kube-controller-manager's endpointslice
	    controller, and the "internet"'s DNS server, 10.40.0.53 (CoreDNS serving
	    test/lab's root zone, external.db)
	node1 (10.40.0.11), node2 (10.40.0.12): eth0 on br0; each runs the real kube-proxy in the
	    mode under test, and holds its pods: a namespace each, on a veth routed as a
	    Calico-style /32 (10.244.N.K, gateway 10.244.N.1), or the node's own for hostNetwork

The programs come from the nested module kube/ (Build): etcd, kube-apiserver and kube-proxy
v1.34, kube-controller-manager's endpointslice controller (alone: the whole controller manager
compiles every other controller for nothing), and podconf, the kubelet's code for a pod's
resolv.conf and environment. The test plays only what no process here can: the scheduler (a
pod's node is chosen when it is made) and the kubelet, whose job it does with the kubelet's own
code where the result matters: a pod gets a namespace, an address, the resolv.conf and the
environment podconf computes from the Pod object read back from the API server, its container
(a CoreDNS) started, and its status (IP, Ready once its readiness endpoint answers) written back,
from which the real endpointslice controller makes the EndpointSlices kube-proxy programs.

kube-dns is deploy/cluster applied to the API server: its Service, ConfigMap and Deployment, whose
two replicas run on different nodes, so that the DNAT of a pod's query crosses nodes. Its Corefile
differs in one line only: a kubeconfig in the kubernetes block, as there is no service-account
token to mount. The node-local server is `helm template charts/raceguard` applied the same way,
its DaemonSet's pod made on each node, its Corefile read from its ConfigMap, its environment (the
service links KUBE_DNS_SERVICE_HOST and KUBE_DNS_UPSTREAM_SERVICE_HOST, NODE_NAME) the kubelet's.

Every namespace is named rglab-<pid>-<n>-... (test/lab's sweep removes what a crashed run left)
and every process dies with the test process. Nodes are made per kube-proxy mode (Nodes), the
control plane once per test binary (Start).
*/
package cluster

// Package kubeapi is a fake Kubernetes API server for tests: it answers the list and watch
// requests of CoreDNS's kubernetes plugin (namespaces, services, endpoint slices, pods) from a
// fixed cluster over HTTP, so the real plugin, its informers and its pod index run unchanged, as
// in CoreDNS's own test/kubernetes_autopath_cache_test.go. Pods are live: tests add, change and
// delete them (PutPod, DeletePod) and every watch hears of it through its field selector, as
// from the real API server; SetDown, Expire and RefuseWatchList make the failures a client must
// survive.
package kubeapi

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Pod is a running pod.
type Pod struct {
	Namespace, Name, IP string
	MoreIPs             []string             // its other addresses (the other family's)
	Node                string               // spec.nodeName
	DNSPolicy           corev1.DNSPolicy     // "" is ClusterFirst, as the kubelet reads it
	DNSConfig           *corev1.PodDNSConfig // nil: none
	HostNetwork         bool
}

// Service is a Service: ClusterIPs, "None" for a headless one, or an ExternalName.
type Service struct {
	Namespace, Name string
	ClusterIPs      []string
	ExternalName    string
	Endpoints       []Endpoint // for headless services
}

// Endpoint is one ready endpoint of a headless service.
type Endpoint struct{ IP, Hostname string }

// Cluster is what the API serves.
type Cluster struct {
	Namespaces []string
	Services   []Service
	Pods       []Pod
	PodObjects []*corev1.Pod // pods with everything else a test gives them, served beside Pods
}

// Sample mirrors zones/cluster.local.db, with the pods given.
func Sample(pods ...Pod) Cluster {
	return Cluster{
		Namespaces: []string{"default", "kube-system", "shop", "monitoring"},
		Services: []Service{
			{Namespace: "default", Name: "kubernetes", ClusterIPs: []string{"10.96.0.1"}},
			{Namespace: "default", Name: "web", ClusterIPs: []string{"10.96.12.34", "fd00:96::12:34"}},
			{Namespace: "default", Name: "legacy", ClusterIPs: []string{"10.96.12.40"}},
			{Namespace: "default", Name: "v6only", ClusterIPs: []string{"fd00:96::12:41"}},
			{Namespace: "default", Name: "docs", ExternalName: "www.example.org"},
			{Namespace: "kube-system", Name: "kube-dns", ClusterIPs: []string{"10.96.0.10"}},
			{Namespace: "kube-system", Name: "metrics-server", ClusterIPs: []string{"10.96.3.7"}},
			{Namespace: "shop", Name: "api", ClusterIPs: []string{"10.96.40.2", "fd00:96::40:2"}},
			{Namespace: "shop", Name: "db", ClusterIPs: []string{"None"}, Endpoints: []Endpoint{
				{IP: "10.244.1.10", Hostname: "db-0"}, {IP: "10.244.2.11", Hostname: "db-1"},
			}},
			{Namespace: "monitoring", Name: "prometheus", ClusterIPs: []string{"10.96.90.9"}},
		},
		Pods: pods,
	}
}

// API is a running fake API server.
type API struct {
	URL  string
	srv  *http.Server
	pods *podStore
}

// Serve answers the kubernetes plugin's requests for c on ln until Close.
func Serve(ln net.Listener, c Cluster) *API {
	resources := map[string]struct {
		kind, apiVersion string
		objects          []runtime.Object
	}{
		"/api/v1/namespaces":                       {"Namespace", "v1", c.namespaces()},
		"/api/v1/services":                         {"Service", "v1", c.services()},
		"/apis/discovery.k8s.io/v1/endpointslices": {"EndpointSlice", "discovery.k8s.io/v1", c.endpointSlices()},
	}
	pods := newPodStore(append(c.pods(), c.PodObjects...))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/pods" && r.Method == http.MethodGet {
			pods.serve(w, r)
			return
		}
		res, ok := resources[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		if r.URL.Query().Get("watch") != "true" {
			items := make([]runtime.RawExtension, 0, len(res.objects))
			for _, o := range res.objects {
				items = append(items, runtime.RawExtension{Object: o})
			}
			enc.Encode(&metav1.List{
				TypeMeta: metav1.TypeMeta{Kind: res.kind + "List", APIVersion: res.apiVersion},
				ListMeta: metav1.ListMeta{ResourceVersion: "1"}, Items: items,
			})
			return
		}
		// client-go may stream its initial list over the watch (sendInitialEvents).
		if r.URL.Query().Get("sendInitialEvents") == "true" {
			send := func(typ string, o runtime.Object) {
				enc.Encode(struct {
					Type   string         `json:"type"`
					Object runtime.Object `json:"object"`
				}{typ, o})
			}
			for _, o := range res.objects {
				send("ADDED", o)
			}
			send("BOOKMARK", &metav1.PartialObjectMetadata{
				TypeMeta: metav1.TypeMeta{Kind: res.kind, APIVersion: res.apiVersion},
				ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1", Annotations: map[string]string{
					metav1.InitialEventsAnnotationKey: "true",
				}},
			})
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	a := &API{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: handler}, pods: pods}
	go a.srv.Serve(ln)
	return a
}

// Close stops the server and ends every watch.
func (a *API) Close() { a.srv.Close() }

// WriteKubeconfig writes a kubeconfig for the API into dir and returns its path.
func (a *API) WriteKubeconfig(dir string) (string, error) {
	b, err := clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"fake": {Server: a.URL}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"fake": {}},
		Contexts:       map[string]*clientcmdapi.Context{"fake": {Cluster: "fake", AuthInfo: "fake"}},
		CurrentContext: "fake",
	})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, b, 0o600)
}

func meta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1"}
}

func (c Cluster) namespaces() []runtime.Object {
	var out []runtime.Object
	for _, n := range c.Namespaces {
		out = append(out, &corev1.Namespace{TypeMeta: metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"}, ObjectMeta: meta("", n)})
	}
	return out
}

func (c Cluster) services() []runtime.Object {
	var out []runtime.Object
	for _, s := range c.Services {
		svc := &corev1.Service{TypeMeta: metav1.TypeMeta{Kind: "Service", APIVersion: "v1"}, ObjectMeta: meta(s.Namespace, s.Name)}
		switch {
		case s.ExternalName != "":
			svc.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: s.ExternalName}
		default:
			svc.Spec = corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: s.ClusterIPs[0], ClusterIPs: s.ClusterIPs,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			}
		}
		out = append(out, svc)
	}
	return out
}

func (c Cluster) endpointSlices() []runtime.Object {
	var out []runtime.Object
	ready := true
	port, proto, pname := int32(80), corev1.ProtocolTCP, "http"
	for _, s := range c.Services {
		if len(s.Endpoints) == 0 {
			continue
		}
		es := &discovery.EndpointSlice{
			TypeMeta:    metav1.TypeMeta{Kind: "EndpointSlice", APIVersion: "discovery.k8s.io/v1"},
			ObjectMeta:  meta(s.Namespace, s.Name+"-slice"),
			AddressType: discovery.AddressTypeIPv4,
			Ports:       []discovery.EndpointPort{{Name: &pname, Port: &port, Protocol: &proto}},
		}
		es.Labels = map[string]string{discovery.LabelServiceName: s.Name}
		for _, e := range s.Endpoints {
			h := e.Hostname
			es.Endpoints = append(es.Endpoints, discovery.Endpoint{
				Addresses: []string{e.IP}, Hostname: &h, Conditions: discovery.EndpointConditions{Ready: &ready},
			})
		}
		out = append(out, es)
	}
	return out
}

// Object returns p as the API serves it.
func (p Pod) Object() *corev1.Pod {
	return Cluster{Pods: []Pod{p}}.pods()[0]
}

func (p Pod) podIPs() []corev1.PodIP {
	ips := []corev1.PodIP{{IP: p.IP}}
	for _, ip := range p.MoreIPs {
		ips = append(ips, corev1.PodIP{IP: ip})
	}
	return ips
}

func (c Cluster) pods() []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range c.Pods {
		out = append(out, &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: meta(p.Namespace, p.Name),
			Spec:       corev1.PodSpec{NodeName: p.Node, DNSPolicy: p.DNSPolicy, DNSConfig: p.DNSConfig, HostNetwork: p.HostNetwork},
			Status:     corev1.PodStatus{PodIP: p.IP, PodIPs: p.podIPs(), Phase: corev1.PodRunning},
		})
	}
	return out
}

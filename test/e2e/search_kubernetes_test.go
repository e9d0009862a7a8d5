package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/kubeapi"
	"github.com/raceguard/raceguard/test/testenv"
)

// kubernetesServer starts CoreDNS in-process with the kubernetes plugin (pods verified) fed by a
// fake API in which 127.0.0.1 is pod default/client, and search completion by searchDirective.
func kubernetesServer(t *testing.T, searchDirective string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp, _ := kubernetesServerWith(t, ln, searchDirective)
	return udp
}

// kubernetesServerWith is kubernetesServer with the fake API on ln, returned for the test to stop.
func kubernetesServerWith(t *testing.T, ln net.Listener, searchDirective string) (string, *kubeapi.API) {
	t.Helper()
	api := kubeapi.Serve(ln, kubeapi.Sample(kubeapi.Pod{Namespace: "default", Name: "client", IP: "127.0.0.1"}))
	t.Cleanup(api.Close)
	kubeconfig, err := api.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.LoopbackUpstream(t)
	i, udp, _, err := testenv.CoreDNSServerAndPorts(`.:0 {
    ` + searchDirective + `
    kubernetes cluster.local {
        kubeconfig ` + kubeconfig + `
        pods verified
    }
    cache 30
    forward . ` + up.Addr + `
}`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.Stop(i) })
	// Wait for the informers: the pod index is what both searches depend on.
	for deadline := time.Now().Add(10 * time.Second); ; {
		m := new(dns.Msg).SetQuestion("api.shop.svc.cluster.local.", dns.TypeA)
		if r, err := dns.Exchange(m, udp); err == nil && len(r.Answer) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("kubernetes plugin did not sync with the fake API")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return udp, api
}

// exchangeFrom sends a query from a given loopback source address.
func exchangeFrom(t *testing.T, src, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := new(dns.Msg).SetQuestion(name, qtype)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).ExchangeWithConn(m, &dns.Conn{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSearchKubernetes runs search completion from the kubernetes plugin's per-pod search list
// (search @kubernetes) against the real plugin, beside stock autopath @kubernetes, and shows where
// they differ.
func TestSearchKubernetes(t *testing.T) {
	t.Run("raceguard", func(t *testing.T) {
		if !testenv.Isolated(t) {
			return
		}
		udp := kubernetesServer(t, "raceguard {\n        search @kubernetes\n    }")

		// 127.0.0.1 is a pod in "default": its first try of api.shop is completed within the
		// namespace's own hierarchy, which the kubernetes plugin's list vouches for.
		r := exchangeFrom(t, "127.0.0.1", udp, "Api.Shop.default.svc.cluster.local.", dns.TypeAAAA)
		if len(r.Answer) != 2 || r.Answer[0].(*dns.CNAME).Target != "Api.Shop.svc.cluster.local." ||
			r.Answer[1].(*dns.AAAA).AAAA.String() != "fd00:96::40:2" || r.Question[0].Name != "Api.Shop.default.svc.cluster.local." {
			t.Errorf("Expected api.shop's AAAA through a CNAME, with the exact question, got %v", r)
		}
		// Beyond it the plugin's list is its own resolv.conf, not the pod's: example.org is not
		// completed, the client walks (README: search completion, the client's list).
		if r := exchangeFrom(t, "127.0.0.1", udp, "ExAmPlE.OrG.default.svc.cluster.local.", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("Expected the first try's own NXDOMAIN for a name beyond the cluster domains, got %v", r)
		}
		// The same name is not this pod's first try in namespace "shop": answered as asked.
		if r := exchangeFrom(t, "127.0.0.1", udp, "example.org.shop.svc.cluster.local.", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("Expected NXDOMAIN for another namespace's expansion, got %v", r)
		}
		// 127.0.0.2 is no pod: the kubernetes plugin gives no search list, nothing is completed.
		if r := exchangeFrom(t, "127.0.0.2", udp, "api.shop.default.svc.cluster.local.", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("Expected no completion for a client that is not a pod, got %v", r)
		}
		// Every name NXDOMAIN: the exact question comes back.
		const q = "NoSuCh.InVaLiD.dEfAuLt.sVc.ClUsTeR.lOcAl."
		if r := exchangeFrom(t, "127.0.0.1", udp, q, dns.TypeA); r.Rcode != dns.RcodeNameError || r.Question[0].Name != q {
			t.Errorf("Expected NXDOMAIN with question %s, got %v", q, r.Question)
		}
	})

	t.Run("stock autopath", func(t *testing.T) {
		if !testenv.Isolated(t) {
			return
		}
		udp := kubernetesServer(t, "autopath @kubernetes")
		r := exchangeFrom(t, "127.0.0.1", udp, "example.org.default.svc.cluster.local.", dns.TypeA)
		if len(r.Answer) != 2 || r.Answer[0].(*dns.CNAME).Target != "example.org." {
			t.Errorf("Expected stock autopath to complete example.org too, got %v", r)
		}
		// Stock autopath answers the all-NXDOMAIN walk with the first try's reply, whose
		// question is rebuilt from the lower-cased search domain (coredns autopath.go:108): a
		// client that checks its 0x20 bits, or the exact question, rejects it.
		const q = "NoSuCh.InVaLiD.dEfAuLt.sVc.ClUsTeR.lOcAl."
		if r := exchangeFrom(t, "127.0.0.1", udp, q, dns.TypeA); r.Question[0].Name == q {
			t.Errorf("Expected stock autopath to change the question's case on the all-NXDOMAIN path; it now keeps it: %v", r.Question)
		}
		// A namespace is an empty name: stock autopath stops at its NODATA and answers the
		// first try with a CNAME to it, where glibc would have walked on.
		if r := exchangeFrom(t, "127.0.0.1", udp, "shop.default.svc.cluster.local.", dns.TypeA); len(r.Answer) == 0 || r.Answer[0].Header().Rrtype != dns.TypeCNAME {
			t.Logf("Stock autopath on a namespace name: %v", r)
		}
	})
}

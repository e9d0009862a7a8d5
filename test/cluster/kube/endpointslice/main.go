// Command endpointslice is kube-controller-manager's EndpointSlice controller alone
// (k8s.io/kubernetes/pkg/controller/endpointslice), started as kube-controller-manager starts it
// with --controllers=endpointslice and its defaults (100 endpoints a slice, 5 workers, no batch
// period), for the cluster lab: it makes the EndpointSlices kube-proxy programs from the Services
// and the pods' status. The whole kube-controller-manager would compile and link every other
// controller for nothing.
//
//	endpointslice -kubeconfig FILE -healthz 127.0.0.1:10257
//
// It serves /healthz (200 once its informers have synced) and stops on SIGTERM.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os/signal"
	"syscall"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kubernetes/pkg/controller/endpointslice"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "the kubeconfig of the API server")
	healthz := flag.String("healthz", "127.0.0.1:10257", "where to serve /healthz")
	flag.Parse()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(rest.AddUserAgent(cfg, "endpointslice-controller"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	f := informers.NewSharedInformerFactory(client, 0)
	c := endpointslice.NewController(ctx, f.Core().V1().Pods(), f.Core().V1().Services(), f.Core().V1().Nodes(),
		f.Discovery().V1().EndpointSlices(), 100, client, 0)
	f.Start(ctx.Done())
	go c.Run(ctx, 5)

	synced := make(chan struct{})
	go func() {
		for _, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return
			}
		}
		close(synced)
	}()
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-synced:
			w.Write([]byte("ok"))
		default:
			http.Error(w, "informers not synced", http.StatusServiceUnavailable)
		}
	})
	srv := &http.Server{Addr: *healthz}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

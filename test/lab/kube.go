package lab

import (
	"net"

	"github.com/raceguard/raceguard/test/kubeapi"
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
	l.api, l.kubeconfig = closer{api.Close}, path
	return nil
}

type closer struct{ f func() }

func (c closer) Close() error { c.f(); return nil }

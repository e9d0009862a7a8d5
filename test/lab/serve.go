package lab

import (
	"net"

	"github.com/miekg/dns"
)

// Serve serves DNS on pc with udp and on ln with tcp, and returns the two servers once both run.
// Shutdown stops each; on an error, both are stopped.
func Serve(pc net.PacketConn, ln net.Listener, udp, tcp dns.Handler) ([]*dns.Server, error) {
	srvs := []*dns.Server{{PacketConn: pc, Handler: udp}, {Listener: ln, Handler: tcp}}
	started := make(chan error, len(srvs))
	for _, s := range srvs {
		s.NotifyStartedFunc = func() { started <- nil }
		go func() {
			if err := s.ActivateAndServe(); err != nil {
				started <- err
			}
		}()
	}
	for range srvs {
		if err := <-started; err != nil {
			for _, s := range srvs {
				s.Shutdown()
			}
			pc.Close()
			ln.Close()
			return nil, err
		}
	}
	return srvs, nil
}

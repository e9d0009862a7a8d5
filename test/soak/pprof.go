package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// pprofAddr is where CoreDNS's pprof plugin listens when -cpuprofile asks for a profile.
const pprofAddr = lab.NodeIP + ":6060"

// withPprof adds the pprof plugin to a Corefile.
func withPprof(corefile string) string {
	return strings.Replace(corefile, "    errors\n", "    errors\n    pprof "+pprofAddr+"\n", 1)
}

// cpuProfile fetches a CPU profile of seconds from the node server into path.
func cpuProfile(ctx context.Context, ns, path string, seconds int) error {
	client := &http.Client{Timeout: time.Duration(seconds+10) * time.Second, Transport: &http.Transport{
		DialContext: func(_ context.Context, network, addr string) (conn net.Conn, err error) {
			err = lab.Do(ns, func() (err error) {
				conn, err = net.DialTimeout(network, addr, 5*time.Second)
				return err
			})
			return conn, err
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, seconds), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

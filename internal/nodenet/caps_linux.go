package nodenet

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNoNetAdmin is returned when the process may not change the node's links, addresses or
// nftables: it lacks CAP_NET_ADMIN, or has it only in a user namespace that does not own the
// network namespace.
var ErrNoNetAdmin = errors.New("CAP_NET_ADMIN is missing: it is needed to create the listen addresses and the nftables rules " +
	"(Kubernetes: securityContext.capabilities.add [NET_ADMIN], as root); without it the node would keep kube-proxy's conntrack path, " +
	"so raceguard refuses to start rather than serve without removing the race")

// checkNetAdmin fails with ErrNoNetAdmin unless CAP_NET_ADMIN is in the effective set.
func checkNetAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3, Pid: int32(os.Getpid())}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	if data[0].Effective&(1<<unix.CAP_NET_ADMIN) == 0 {
		return ErrNoNetAdmin
	}
	return nil
}

// permission wraps err, the failure of what, and turns EPERM, which netlink answers without the
// capability over the network namespace, into ErrNoNetAdmin.
func permission(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (%s: %v)", ErrNoNetAdmin, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

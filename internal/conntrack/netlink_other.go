//go:build !linux

package conntrack

import "errors"

// NewNetlink returns an error: ctnetlink only exists on Linux.
func NewNetlink() (Reader, error) {
	return nil, errors.New("conntrack statistics need Linux")
}

//go:build !linux

package nodenet

import (
	"context"
	"errors"
	"time"
)

// errLinux is every answer off Linux: a node-local set-up is netfilter's.
var errLinux = errors.New("the node-local set-up needs Linux (netlink, nftables)")

// Node is the node set-up; off Linux it can only fail.
type Node struct {
	// Logf logs an informational line; nil discards it.
	Logf func(format string, args ...any)
}

// New returns the Node for cfg.
func New(Config) *Node { return &Node{} }

// Preflight fails off Linux.
func Preflight(Config) error { return errLinux }

// Prepare fails off Linux.
func (n *Node) Prepare() error { return errLinux }

// Capture fails off Linux.
func (n *Node) Capture(context.Context, time.Duration) error { return errLinux }

// Hold does nothing off Linux.
func (n *Node) Hold() error { return nil }

// Capturing is false off Linux.
func (n *Node) Capturing() bool { return false }

// Ready is false off Linux.
func (n *Node) Ready() bool { return false }

// Check does nothing off Linux.
func (n *Node) Check() {}

// Reconfigure fails off Linux.
func (n *Node) Reconfigure(Config) error { return errLinux }

// Teardown does nothing off Linux.
func (n *Node) Teardown() error { return nil }

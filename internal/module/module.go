// Package module names the raceguard plugin module once, for the packages that log, count and
// call down the plugin chain on its behalf.
package module

// Name is the raceguard directive's name. It is also the plugin label of the module's log lines,
// the Prometheus subsystem of every metric the module exports (coredns_raceguard_*), whichever
// directive or mechanism exports it, and the name its own queries go down the chain under.
const Name = "raceguard"

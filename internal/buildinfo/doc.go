// Package buildinfo says which raceguard a CoreDNS binary carries: the module version the go
// command resolved (a release tag, or a pseudo-version naming a commit) and the commit, read once
// from the binary's build information, so they are true of any build. It shows them in `coredns
// -version` ("CoreDNS-1.15.0+raceguard-v0.1.0"; it imports coremain so that coremain's init sets
// caddy.AppVersion first) and in coredns_raceguard_build_info. A build that replaces the module
// with a directory has no module version: it may set one with -ldflags -X (version, revision),
// else the version is "devel".
package buildinfo

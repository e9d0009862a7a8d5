// Package buildinfo says which raceguard a CoreDNS binary carries: the version the go command
// resolved for the module github.com/raceguard/raceguard when it built the binary (a release tag
// such as v0.1.0, or a pseudo-version naming a commit), and the commit when the version names
// one. Both are read once, from the binary's build information (runtime/debug.ReadBuildInfo), so
// they are true of any build: `go get` of a release into a CoreDNS tree, a commit, or a fork.
//
// They show in two places, set up in init, once per process whatever reloads follow, and without
// any Corefile:
//
//   - `coredns -version`, which prints CoreDNS's caddy.AppVersion, says
//     "CoreDNS-1.15.0+raceguard-v0.1.0" (so does the chaos plugin's version.bind). This package
//     imports coremain, as CoreDNS's own metrics plugin does, so coremain's init has set
//     AppVersion before this package's init appends to it.
//   - coredns_raceguard_build_info{version, revision, goversion} is 1, as CoreDNS's own
//     coredns_build_info.
//
// A build that replaces the module with a directory (a replace directive, as hack/build-coredns.sh
// makes in its copy of CoreDNS) has no module version in its build information: it can set one
// at link time with -ldflags "-X github.com/raceguard/raceguard/internal/buildinfo.version=V
// -X github.com/raceguard/raceguard/internal/buildinfo.revision=R". Without either, the version
// is "devel".
package buildinfo

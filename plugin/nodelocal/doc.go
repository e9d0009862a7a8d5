/*
Package nodelocal implements the nodelocal directive of the raceguard CoreDNS plugin module: the
server block it is in becomes the node's own DNS server, installed by itself on the node and with
no conntrack on the pod-to-DNS hop, so the conntrack race of the parallel A/AAAA pair cannot
happen there.

raceguard alone narrows the race (one A+AAAA pair per lookup instead of five) but, behind a
ClusterIP, every pair still crosses kube-proxy's DNAT. NodeLocal DNSCache removes the race with
NOTRACK rules and installs itself, but its rules outlive it: a crashed node-cache blackholes the
node's DNS. nodelocal does what node-cache does (addresses, NOTRACK for queries, replies,
hostNetwork clients and health probes, firewall accept rules, a periodic restore) with rules the
kernel removes when raceguard dies, so a node falls back to kube-proxy's path to kube-dns instead.
Package nodenet holds the mechanism and explains the rules.

# The addresses are the block's own

nodelocal takes no address: it sets up what the server block binds (bind 169.254.20.10
10.96.0.10), on the block's port. With the kube-dns ClusterIP among them (transparent mode), pods
need no change at all; the server's own upstream must then be another Service of the same pods,
kube-dns-upstream, since the ClusterIP now leads to the server itself.

# Position in plugin.cfg

Just after bind. Startup callbacks run in directive order, and ready, health, pprof and
prometheus bind their listeners in theirs, before the servers bind: the addresses must exist
before any of them. The teardown must come after health's lameduck, which passes in health's
final-shutdown callback; nodelocal registers its own final-shutdown callback at startup, which puts
it after every directive's. In the chain it only passes queries on.

# Lifecycle

The set-up belongs to the process: the first server instance checks the node (changing nothing
if another process serves an address, or without CAP_NET_ADMIN), makes the addresses, and starts a
goroutine that installs the rules once the servers listen and then checks them every
check_interval. A reload (SIGUSR1, the reload plugin) starts the new instance before it stops the
old one; the new one finds the set-up and applies its configuration, idempotently. Only the final
shutdown, after lameduck, tears it down. Ready reports true once the rules are in.

NodeLocal() lets raceguard, in the same block, know it serves a node-local server. In the chain
nodelocal passes queries on, but for the self-check's, which it answers itself.
*/
package nodelocal

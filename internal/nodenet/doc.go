/*
Package nodenet sets a node up for a node-local DNS server, so that a pod's DNS query never
enters conntrack or kube-proxy's DNAT: the conntrack race of the parallel A/AAAA pair cannot happen
on that hop. It is the mechanism of the nodelocal directive; it knows nothing of CoreDNS.

# What it makes

The listen addresses (the link-local 169.254.20.10 and, in transparent mode, the kube-dns
ClusterIP) go on a dummy link of raceguard's own, as NodeLocal DNSCache's node-cache does, or on
lo where the kernel has no dummy links; either way the link kind is logged and exported. With them,
before the servers bind, one nftables table (family inet) over netlink, which holds: it takes no
pod's DNS, and drops what reaches the addresses without kube-proxy's translation, as if they were
not there (a ClusterIP kube-proxy has not programmed yet), or refuses it on a link-local address
(want says why). Once the server listens on every address and its owner says so (Capture: the
nodelocal directive, once its upstream answers), the table captures:

  - prerouting, raw priority (before conntrack): DNS (UDP and TCP) to the addresses is NOTRACK,
    only while a socket takes the packet (`socket wildcard 0` for UDP: bound to the very address;
    `socket transparent 0` for TCP, whose handshake ACK meets a request socket, which has no
    "wildcard" to report);
  - output, raw priority: the server's replies are NOTRACK (conntrack never saw the query); so is
    DNS that the node itself sends to the addresses (hostNetwork pods), and, as node-cache does,
    the kubelet's health probes to the health port.

And, where iptables-nft has filter chains, accept rules for the untracked packets at the top of
its INPUT and OUTPUT chains (firewall_linux.go says why they cannot live in raceguard's table).

# Why nothing blackholes when raceguard dies

NodeLocal DNSCache's rules are unconditional iptables rules: when node-cache dies without its
teardown (SIGKILL, OOM), the node keeps sending DNS to an address nothing listens on. raceguard's
rules are conditional twice over.

The table is an owner table (NFT_TABLE_F_OWNER, Linux 5.12): it belongs to a netfilter socket that
raceguard keeps open for its whole life, and the kernel deletes it when that socket closes, which it
does however the process ends. No other process can change it, and `nft flush ruleset` passes it
by. After a SIGKILL the node is exactly as without raceguard: a pod's query to the ClusterIP is
tracked and DNATed by kube-proxy to kube-dns, with no cleanup by anyone.

The prerouting rules also need a listening socket: the `socket` expression looks the packet's
socket up (`wildcard 0` holds only for a socket bound to that address), so a raceguard that is
alive but not listening (still starting, or a server that failed to bind) does not capture DNS.
That condition cannot serve the output chain: there the packet already belongs to the sending
socket, which the expression then reports on (a connected glibc socket is "not wildcard" whether a
server listens or not; an unconnected musl socket never is). Checked on Linux 6.18: with the
`socket` condition alone in output, a connected client got ECONNREFUSED from an address nothing
served, and an unconnected one never reached the local server. The owner table is what keeps the
output rules honest.

Kernels before 5.12 have no owner tables; raceguard refuses to start there (ErrNoOwnerTables)
rather than leave rules that would blackhole hostNetwork clients.

# Two raceguards at once, and what is whose

A surge rollout starts the new pod beside the old one: both bind the same addresses
(SO_REUSEPORT). Each process has its own owner table (raceguard, raceguard-2, ...): the old pod's
table goes with the old pod, the new pod's rules are in place before that, so the node is never
without them. The addresses and firewall rules are shared: at its final shutdown (after lameduck)
a raceguard removes them only when no other process's socket is bound to the addresses, and then
only the ones a raceguard made, known by their marks (the dummy link's alias, the lo:raceguard
label of an IPv4 address on lo) or because this process added them.

Before changing anything, Preflight refuses to start when something other than a raceguard
already serves DNS on an address, naming the address and the holder (the process, as far as
this one can see, or kube-proxy's IPVS virtual service): node-local-dns of NodeLocal DNSCache
would otherwise silently share the port through SO_REUSEPORT. A raceguard's socket is recognised
by a live raceguard owner table that lists the address. Preflight also checks CAP_NET_ADMIN, so
that a pod without it fails with one line saying so.

Hold takes the capture back (its owner's upstream stopped answering), and Capture gives it again.
An observing set-up (Config.Observe) has link-local addresses only and a table that merely lists
them: it never captures.

# Keeping it

A periodic check puts back what is missing: an address someone removed, a firewall accept rule
someone flushed or pushed down below rules of others, or the table's content; each restore is
counted. The owner table itself cannot be changed by anyone else, so in practice it is the
addresses and the firewall rules that get restored.

# Locking

Node.mu serialises every change to the node and the periodic check; ready is read by the readiness
check without it.
*/
package nodenet

/*
Package nodenet sets a node up for a node-local DNS server, so that a pod's DNS query never
enters conntrack or kube-proxy's DNAT: the conntrack race of the parallel A/AAAA pair cannot happen
on that hop. It is the mechanism of the nodelocal directive; it knows nothing of CoreDNS.

What it makes: the listen addresses (the link-local 169.254.20.10 and, in transparent mode, the
kube-dns ClusterIP) on a dummy link of its own (or on lo where the kernel has none), and, before the
servers bind, one nftables table (family inet, over netlink). The table first holds: it takes no
pod's DNS, and drops (ClusterIP) or refuses (link-local) what reaches the addresses untranslated,
as if they were not there. Once its owner calls Capture (the nodelocal directive, when its upstream
answers), it captures: NOTRACK in raw prerouting for DNS to the addresses, only while a socket
takes the packet (`socket wildcard 0` for UDP, `socket transparent 0` for TCP), and in raw output
for the server's replies, the node's own DNS to the addresses and the kubelet's health probes.
Where iptables-nft has filter chains, accept rules for the untracked packets go on top of INPUT and
OUTPUT (firewall_linux.go says why they cannot live in the table). Hold takes the capture back. An
observing set-up (Config.Observe) has link-local addresses only and never captures.

Why nothing blackholes when raceguard dies: the table is an owner table (NFT_TABLE_F_OWNER, Linux
5.12), deleted by the kernel when raceguard's netfilter socket closes, however the process ends;
no one else can change it. After a SIGKILL the node is as without raceguard: kube-proxy's path to
kube-dns. The prerouting rules also need a listening socket; the output chain cannot use that
condition (the packet belongs to the sender's socket there), so the owner table is what keeps it
honest. Kernels without owner tables are refused (ErrNoOwnerTables) rather than risk a blackhole.

Two raceguards at once (a surge rollout): each has its own owner table (raceguard, raceguard-2,
...); the shared addresses and firewall rules are removed at the final shutdown only when no other
raceguard's socket holds the addresses, and only those a raceguard made; the old one first hands
its UDP sockets over (handover_linux.go), so that no query is dropped with them. Preflight refuses to
start, changing nothing, where something else serves DNS on an address (node-local-dns, an IPVS
service), or without CAP_NET_ADMIN.

A periodic check restores what others removed or pushed down (an address, a firewall rule's
place), counted. Locking: Node.mu serialises every change and the check; ready is read without it.
*/
package nodenet

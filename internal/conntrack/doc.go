/*
Package conntrack reads the conntrack statistics of the network namespace CoreDNS runs in and
exports them to Prometheus, so a node's DNS server can show whether the kernel is losing packets of
the A+AAAA race (the Kubernetes "5 second DNS lookup").

# Sources

The kernel keeps per-CPU counters for each network namespace and offers them two ways:

  - ctnetlink (IPCTNL_MSG_CT_GET_STATS_CPU and IPCTNL_MSG_CT_GET_STATS). It is the primary source:
    it is always built when conntrack can be queried at all, it is binary (no column layout to
    guess) and it carries every counter, including clash_resolve (attribute 14) and chaintoolong
    (attribute 15), which github.com/ti-mo/conntrack's Stats drops; this package sends the per-CPU
    dump itself with github.com/ti-mo/netfilter for that reason. Every nfnetlink message needs
    CAP_NET_ADMIN in the user namespace owning the network namespace; without it the kernel answers
    EPERM.
  - /proc/net/stat/nf_conntrack, the fallback. The file is world-readable (0444), so it works
    without CAP_NET_ADMIN, but it only exists with CONFIG_NF_CONNTRACK_PROCFS, which newer
    distribution kernels leave out, and its columns changed over time. It is hex, a header and one
    row per possible CPU, and it is parsed by column name so that old and new layouts both work.

Open("netlink", ...) tries ctnetlink once, and if the socket cannot be made or the kernel refuses
the query, logs one line and reads procfs instead.

# Scope

Counters and the entry count are per network namespace: they start at zero with the namespace and
the kernel has one set for each. A ctnetlink socket reports the namespace it was created in, and
/proc/net/stat/nf_conntrack the namespace of the process reading it (/proc/thread-self/net/... for
a thread that joined another one). CoreDNS in a pod sees the pod's namespace, not the node's, so
the numbers only describe the node's DNAT when CoreDNS runs with hostNetwork or as a node-local
cache. nf_conntrack_max (MaxEntries) is global.

# Meaning across kernels

insert_failed counts entries that could not be inserted at confirm time. Since Linux 5.10 a clash
the kernel resolved (UDP, where the loser of a race is attached to the winner's entry or gets a
NAT-clash reply tuple) increments clash_resolve instead; before 5.10 resolved clashes incremented
insert_failed too, so on old kernels insert_failed alone does not prove a lost packet and drop
does. clash_resolve is reported from 5.10 and chaintoolong from 5.15; Stats says whether the
kernel sent them.
*/
package conntrack

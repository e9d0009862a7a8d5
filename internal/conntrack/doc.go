/*
Package conntrack reads the conntrack statistics of the network namespace CoreDNS runs in and
exports them to Prometheus: whether the kernel is losing packets of the A+AAAA race.

Sources: ctnetlink first (binary, every counter, including clash_resolve and chaintoolong, which
github.com/ti-mo/conntrack's Stats drops, so the per-CPU dump is sent here with ti-mo/netfilter;
needs CAP_NET_ADMIN), else /proc/net/stat/nf_conntrack (world-readable, but only with
CONFIG_NF_CONNTRACK_PROCFS; hex, parsed by column name so old and new layouts both work). Open
("netlink") falls back to procfs with one logged line.

Scope: counters are per network namespace (a pod sees its own, not the node's, so the numbers
describe the node's DNAT only with hostNetwork); nf_conntrack_max is global.

Meaning: since Linux 5.10 a clash the kernel resolved counts in clash_resolve; before, it counted
in insert_failed too, so there insert_failed alone proves no lost packet and drop does.
clash_resolve exists from 5.10, chaintoolong from 5.15; Stats says whether the kernel sent them.
*/
package conntrack

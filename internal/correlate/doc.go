/*
Package correlate ties the node's conntrack counters to what DNS clients experience.

Every interval (1 s by default) a Monitor reads the conntrack statistics of the network namespace
it runs in (package conntrack) and keeps, for a bounded window (10 minutes by default), the deltas
of drop, insert_failed and clash_resolve beside the number of late siblings and retransmissions
the DNS side saw (package fingerprint). A client that lost a query retries after its resolver's
timeout, so a drop at time t shows as a late sibling at t+5 s (glibc), t+2.5 s (musl), t+1 s or
t+0.5 s (timeout:1). For each conntrack counter and DNS signal the Monitor computes the Pearson
correlation of the counter's series with the DNS series shifted by 1 s, 2.5 s and 5 s, and exports
it as a gauge. It also counts the late siblings whose loss time (arrival minus gap) falls in an
interval where conntrack dropped packets or failed an insert.

When drops and late siblings move together, the Monitor logs one line (at most every 10 minutes)
saying what is happening and what helps.

Conntrack counters are per network namespace, and the race happens in the namespace that does the
DNAT, the node's: the numbers mean something when raceguard runs with hostNetwork. There is one
Monitor per process, shared by every server block and kept across reloads; the configuration of
the server block started last applies.
*/
package correlate

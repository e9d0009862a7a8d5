/*
Package correlate ties the node's conntrack counters to what DNS clients experience.

Every interval a Monitor samples the deltas of drop, insert_failed and clash_resolve (package
conntrack) beside the late siblings and retransmissions of that interval (package fingerprint),
keeps a window of them, and exports the Pearson correlation of each counter with each DNS signal
1 s, 2.5 s and 5 s later: a query dropped at t is retried at t plus the resolver's timeout. It also
counts the late siblings whose loss fell in an interval with drops, and logs (at most every 10
minutes) when the two move together.

The numbers mean something only in the namespace that does the DNAT, the node's (hostNetwork).
There is one Monitor per process (package process), kept across reloads; the configuration of
the server block started last applies.
*/
package correlate

/*
Package collapse implements the collapse directive of the raceguard CoreDNS plugin module:
identical queries in flight at the same time share one resolution.

Stock CoreDNS sends every cache miss down the chain, so a burst of pods asking one name, or a
client retransmitting, becomes a burst of identical upstream queries (coredns#2879,
kubernetes/dns#387). collapse sits just after cache, so it sees only misses and never a query acl
refused.

The key (key.go) holds everything that can change the answer or whether a client may accept it:
the name case-insensitively, type and class, DO, CD, RD, the transport and the EDNS size class;
the server block and view are implicit (one Collapse each). Queries with a client subnet, and
anything but a one-question QUERY, are never collapsed.

The flight (flight.go, shaped as singleflight's Group): the first query of a key leads, and its
resolution runs in a goroutine of its own, detached from the leader's context and bounded by a
timeout; every query waits for it or its own deadline. The leader gets the reply as written; each
waiter a copy made into its own reply (package reply). A truncated reply is not shared. A
resolution that wrote nothing failed for all alike: the waiters try once more together, then get
SERVFAIL. A panic below is recovered in the flight's goroutine (package recovery): every query of
the flight gets SERVFAIL, with no retry. Waiters per flight and flights in total are capped; a
query over a cap resolves alone. Nothing is kept once a resolution ends.

collapse finds a SiblingPrefetcher (raceguard with sibling_prefetch on) among the block's handlers
at startup and calls it for every resolution it leads.

Locking: the flight table's shard lock guards a flight's waiters and clients; every other field
of a flight is written once, before done is closed.
*/
package collapse

/*
Package collapse implements the collapse directive of the raceguard CoreDNS plugin module:
identical queries in flight at the same time are collapsed into one resolution.

Stock CoreDNS sends every cache miss down the chain, so a burst of pods asking one name, or a
client retransmitting while the first try is still out, becomes a burst of identical upstream
queries (coredns#2879, kubernetes/dns#387): more conntrack entries, more load, and more chances
for a spoofed reply to win (CVE-2023-30464). collapse sits just after cache, so it only sees
misses and never a query acl refused, and collapses identical ones the way Unbound, PowerDNS and
BIND do.

# The key

Two queries are collapsed into one resolution only if nothing that can change the answer, or
whether a client may accept it, differs between them (see key.go): the name case-insensitively
(RFC 4343), type and class; DO (RRSIGs or not, RFC 3225); CD (CVE-2024-0874); RD; the transport
and the EDNS buffer size class, because forward asks upstream over the client's transport with the
client's size, and a reply truncated for one must not reach a client that can take more. The
server block and view are implicit: each has its own Collapse. Queries with a client subnet (ECS,
RFC 7871 §11.2: collapsing them defeats the point of ECS and revives birthday attacks) or a
non-QUERY opcode are never collapsed.

# The flight

The first query for a key leads: its resolution runs down the chain in a goroutine of its own,
detached from the leader's context and bounded by timeout, so the leader's client going away fails
no one else. Every query, leader included, waits for the resolution or its own deadline, whichever
comes first. The leader gets the reply exactly as the chain wrote it; each waiter gets a deep copy
made into its own reply (its ID, its question bytes, its OPT record; see package reply) and the
server truncates it to its own size. A truncated reply is not shared: waiters resolve on their
own. A resolution that wrote nothing (an error: a dead upstream, a timeout) failed for all of its
queries alike: the waiters try once more together, as a new flight, and if that fails too each
gets SERVFAIL, as without collapse, but after two upstream tries instead of one per client. A
retransmission (same client address, port, ID and question) is collapsed into its own first try
like any waiter and is counted as one. A panic in the chain below is recovered in the flight's
goroutine, as dnsserver recovers one in a query's own (package recovery): every query of the flight
gets SERVFAIL, and no retry follows. flight.go holds the flight logic, shaped as singleflight's
Group: join finds or starts a key's flight, run resolves it once for all who joined.

Waiters per flight and flights in total are capped; a query over either cap passes through, and is
counted. A flight is forgotten the moment its resolution ends: nothing is cached here.

# Sibling prefetch

collapse is the plugin that knows a query missed the cache. When the server block has a plugin
that implements SiblingPrefetcher (raceguard with sibling_prefetch on), found at startup over the
block's handlers as cache finds its ZoneBypassers, collapse calls it for every resolution it leads.

# Locking

The flight table (package bounded) guards each flight's waiters and clients under its shard lock;
every other field of a flight is written once, before done is closed, and only read after.
*/
package collapse

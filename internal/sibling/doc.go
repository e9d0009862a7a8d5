/*
Package sibling resolves the other address type of a name when one misses the cache, so that a
client that asks the second type later finds it cached.

glibc sends A and AAAA at once, but falls back to one after the other (single-request) after a
timeout, and in single-request or single-request-reopen mode always; applications that call
getaddrinfo twice, and tc rules that delay AAAA, do the same. Each of those lookups costs two
upstream round trips. When the first type misses, the Prefetcher sends the sibling query through
the chain below raceguard (acl, cache, collapse, forward) at once, with the client's address and
flags, so the cache holds it when the client asks.

Who knows a query missed? Only a plugin below cache: the collapse directive calls PrefetchSibling
for every miss it resolves, and raceguard, above cache, runs it, so the answer lands in the cache.
A prefetched sibling that the cache already holds costs one cache lookup, never an upstream query;
one the client is asking at the same moment is collapsed into it by collapse. A prefetch never
triggers another, nor does a search walk, which resolves both types anyway: both go down the chain
marked as raceguard's own (query.MarkOwn), and collapse calls for no prefetch on such a query.
Prefetches in flight are bounded; a name is prefetched at most once per window, and a client
query for a prefetched sibling in that window counts as a hit.
*/
package sibling

/*
Package sibling resolves the other address type of a name when one misses the cache, so that a
client that asks it later (glibc single-request and its fallback after a timeout, programs that
call getaddrinfo twice) finds it cached instead of paying a second upstream round trip.

Only a plugin below cache knows a query missed: collapse calls PrefetchSibling for every miss it
resolves, and the Prefetcher sends the sibling where the client's own query would go (package
dispatch), so the answer lands in the cache. A prefetch is marked as raceguard's own and sets off
no other. Prefetches in flight are bounded, a name is prefetched at most once per window, only
for a client that asks that type (package family), and a client query for it within the window
counts as a hit.
*/
package sibling

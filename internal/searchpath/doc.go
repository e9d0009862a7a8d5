/*
Package searchpath completes a client's search list on the server, so a Kubernetes pod's lookup of
example.org costs one A+AAAA pair instead of one pair per search domain, without ever changing the
answer the client's own resolver would end with.

When a query is the first try of a search walk (a Source plans it, the Walker admits it), the
Walker tries the remaining names itself and answers the first try with a CNAME to the name the
client would have stopped at. Each try goes where the client's own query for that name would go
(dispatch): through the CoreDNS server's zone and view dispatch, to the server block that serves
it, and down that block's whole chain (acl, rewrite, cache, forward); a name no block serves is
refused there, as it would be for the client. Those tries carry raceguard's own mark
(query.MarkOwn), so the raceguard of the block that serves them lets them through untouched.

# The stopping rule

What a client does with each try is fixed by its C library (glibc's res_query.c, musl's
lookup_name.c), for the pair and for A or AAAA alone:

  - NXDOMAIN for both A and AAAA: glibc and musl both go on to the next name.
  - NOERROR with records: glibc stops (it accepts the pair if either answer has records, and a
    single query if it has); musl stops.
  - NOERROR without records (NODATA): glibc goes on; musl stops and reports no data.
  - SERVFAIL or any other error: glibc goes on or stops depending on which of the pair failed;
    musl stops with EAI_AGAIN or EAI_FAIL.

The Walker tries names while both types are NXDOMAIN. At the first name where neither is, if both
are clean NOERROR answers, it completes: each type's reply is a CNAME from the asked name (the
client's exact bytes) to that name (its base in the client's case) plus its records when it has
records, and a plain NODATA when it has none. A client with a NODATA reply behaves as at the real
name (musl stops, glibc goes on and walks the rest itself); a client with records stops with
exactly those. Anything else (an error, or one type NXDOMAIN and the other not) is passed through:
the client gets the first name's own answer and walks itself, which is what it would have done
without raceguard. Every decision is made once for the pair, so the A and the AAAA of one lookup
always name the same candidate.

# When a walk must not complete

A completion is sent only when it cannot change what the client ends with:

  - The client's search list must be known up to the stopping name (Walk.Trusted). An inferred
    list is trusted only in the namespace's own hierarchy (<ns>.svc.<cluster domain>,
    svc.<cluster domain>, <cluster domain>), which every list that starts with a namespace domain
    shares; a pod with a custom dnsConfig may lack the node's domains or have its own. Where the
    server sees every try of its clients (Walker.Learn, a node-local deployment), the tries a
    client sends itself after a walk passed through show its real list, and later walks follow
    and trust that list. Tries other server blocks serve come in through ObserveTry (package
    tries); a try that cannot be the next (trail.follows) is a name asked as is; an address
    several clients share (Walker.Shared: the node's own) gets no list. A name of another
    namespace than the client's learned one is no first try of it, and is answered as asked; so
    is a one-label base of a client whose list is unknown. Once every trusted name is NXDOMAIN,
    the walk passes through at once, whatever the names beyond would answer; those it started
    answer the client's own tries of them.
  - The completed reply must fit the client's size (UDP: 512 bytes without EDNS): the completion
    carries a longer question and a CNAME, and musl before 1.2.4 keeps what fits of a truncated
    reply without retrying over TCP.
  - The client must not validate: a query with DO or AD, or a TSIG, is never completed, and a
    completed reply never has AD (its CNAME has no signature, RFC 4035 §3.2.3).
  - The walk must decide in time: the client waits for its first try's own answer, and at most
    Deadline longer. Then it gets that answer and walks on, and the walk's tries, all started by
    then, answer its later tries from memory.

# What the client walks on with

When the client walks on (the walk passed through or was exhausted, or answered a type with
NODATA), the walk is kept for it as a trail: its NXDOMAINs are answered from memory, for no longer
than their SOA allows, and a try still in flight is waited for rather than asked again. Its later
tries are never completed as walks of their own: they are the tail of this one. A name below the
first try itself shows the first try was a name asked as is: it is counted, and teaches nothing.

# Sharing

The A and AAAA of one lookup arrive together. The first to arrive leads the walk, which resolves
both types of each name; the second waits for it and takes its own type's answer, so a lookup
costs one walk. The walk runs detached from either client's context, bounded by Timeout, and each
waiter is bounded by its own.
*/
package searchpath

/*
Package searchpath completes a client's search list on the server, so a Kubernetes pod's lookup of
example.org costs one A+AAAA pair instead of one pair per search domain.

When a query is the first try of a search walk (see Expand and the Sources), the Walker tries the
remaining names itself, through the rest of the plugin chain, and answers the first try with a
CNAME to the name the client would have stopped at. Every try passes acl, cache and the rest like
a client's own query would.

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
are clean NOERROR answers, it completes: each type's reply is a CNAME from the asked name to that
name plus its records when it has records, and a plain NODATA when it has none. A client with a
NODATA reply behaves as at the real name (musl stops, glibc goes on and walks the rest itself);
a client with records stops with exactly those. Anything else (an error, or one type NXDOMAIN and
the other not) is passed through: the client gets the first name's own answer and walks itself,
which is what it would have done without raceguard. Every decision is made once for the pair, so
the A and the AAAA of one lookup always name the same candidate.

If every name is NXDOMAIN the walk is exhausted: the client gets the first name's NXDOMAIN and will
walk the rest itself, so the NXDOMAINs already found are remembered for that client, for no longer
than their SOA allows, and answered without another trip down the chain. After a passed-through
walk, the client's later tries are remembered too, so they are never completed as a walk of their
own: they are the tail of this one.

# Sharing

The A and AAAA of one lookup arrive together from one socket. The first to arrive walks both types;
the second waits for it and takes its own type's answer, so a lookup costs one walk. The walk runs
detached from either client's context, and each waiter is bounded by its own.
*/
package searchpath

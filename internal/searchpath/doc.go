/*
Package searchpath completes a client's search list on the server, so a Kubernetes pod's lookup of
example.org costs one A+AAAA pair instead of one pair per search domain, without ever changing the
answer the client's own resolver would end with.

The Walker's one entry is Serve (walker.go). For a client's A or AAAA query it answers a later try
of a walk the client continues itself from what that walk resolved (recall.go), a first try from a
completion remembered for the same client (completions.go), or, when the query is the first try of
a walk a Source plans (source.go) and the walk may run (admit, the budget and the cap), by trying
the rest of the names itself and answering with a CNAME to the name the client would have stopped
at (complete.go, run.go). Each try goes where the client's own query for that name would go
(package dispatch), through the server's zone and view dispatch and that block's whole chain.

# The stopping rule

glibc (res_query.c) and musl (lookup_name.c) go on past a name while both A and AAAA are NXDOMAIN.
The walk does the same; at the first name where neither is, clean NOERROR answers complete the walk
(each type with a CNAME and its records, or a plain NODATA), and anything else (an error, one type
NXDOMAIN and the other not) passes through: the client gets its first try's own answer and walks
itself. The A and the AAAA of one lookup share one walk (a pair), so they always name the same
candidate.

# Whose list

A completion may stop only at names of the client's own list. The list comes from facts, never
from what a client sends (with plain UDP nothing proves who sent a packet):

  - Pods: the pod's list exactly as the kubelet wrote it, from the Kubernetes API (package
    podlist); trusted whole, the name itself included, for bases with fewer dots than the pod's
    ndots. One-label bases only where every try of a client is seen (node-local).
  - Infer: no API; the namespace from the query name, trusted in its own hierarchy only
    (<ns>.svc.<cd>, svc.<cd>, <cd>), which every kubelet list that starts with a namespace domain
    has, and only if the namespace exists (Walk.Verify).
  - Fixed (a list the operator vouches for) and Func (another plugin's AutoPath).

What a client sends can only make raceguard decline: a try that contradicts its exactly known list
(a domain the list lacks in the middle of its walk, or the name itself too early) vetoes its walks
for vetoTTL. A forged packet can do no more than make a pod's lookups cost what they cost without
raceguard.

# Trails

When the client walks on (the walk passed through, was exhausted, answered a type with NODATA, or
did not run), the walk is kept for it as a trail. A query is a later try of a trail only if it is
exactly the trail's base under a domain of its list, or the base itself: never the first try
again, never any other suffix. Its NXDOMAIN is answered from memory (no longer than its SOA
allows); any other later try goes down the chain as it is, and is never completed as a first try
of its own.

# When a walk must not complete

A completed reply must fit the client's size; a client that validates (DO, AD, TSIG) is never
completed; and the walk must decide by Deadline after its first try's own answer, else the client
gets that answer and walks on. Walks are bounded per client (Budget) and in all (maxWalks).
*/
package searchpath

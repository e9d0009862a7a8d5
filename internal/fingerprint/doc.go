/*
Package fingerprint watches, from the server's side, for the traces a lost DNS packet leaves.

glibc and musl send the A and the AAAA of a lookup together from one socket. When the conntrack
race (or anything else) drops one of them, the client waits for its resolver timeout and asks
again from the same socket: the lost type reaches the server long after its partner was
answered, 5 s later with glibc's defaults, 2.5 s with musl's (timeout/attempts), 1 s and 0.5 s with
timeout:1. A query the client resent because its reply was lost arrives again with the same ID.
So, per client address, port and name, the Tracker records when each type arrived and when it was
answered:

  - a late sibling is the second type of a pair arriving more than LateAfter after its partner
    was answered: a client that asks one type after the other (single-request, or a slow upstream)
    asks right after the answer, a client that lost a packet asks a timeout later. An answer
    within the coarse clock's tick of its query (a cache hit) is not written down, to spare every
    hit a second visit to the table: the partner's arrival stands for it, as it does for a partner
    not answered yet (only a lost first copy brings a parallel client's sibling that late);
  - a retransmission is a type arriving again with the same ID;

and it counts both, with the gap from the partner's (or the first try's) arrival in a histogram
whose buckets separate the 0.5 s, 1 s, 2.5 s and 5 s retry intervals. Each late sibling's loss time
(its arrival minus its gap) goes to the correlation with the node's conntrack counters.

The table is bounded; an entry lives Window (longer than any resolver waits), and a full table
makes the Tracker skip new pairs, counted as an overflow.
*/
package fingerprint

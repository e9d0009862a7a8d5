/*
Package fingerprint counts, from the server's side, the traces a lost DNS packet leaves.

glibc and musl send a lookup's A and AAAA together from one socket; when one is lost, the client
asks it again from that socket after its resolver timeout (5 s glibc, 2.5 s musl, 1 s or 0.5 s with
timeout:1). Per client address, port and name the Tracker records when each type arrived and was
answered, and counts:

  - a late sibling: the second type arriving more than LateAfter after its partner was answered
    (a client asking one after the other asks right after the answer). An answer within the
    coarse clock's tick of its query (a cache hit) is not written down: the arrival stands for it;
  - a retransmission: a type arriving again with the same ID;

with the gap in a histogram whose buckets separate the retry intervals. Each late sibling's loss
time goes to the correlation with the node's conntrack counters (package correlate). The table is
fixed (package slots); an entry lives Window, longer than any resolver waits.
*/
package fingerprint

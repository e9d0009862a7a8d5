// Package hostile measures a CoreDNS binary under hostile and heavy traffic, the same way for stock
// CoreDNS and for raceguard: how many upstream queries one client packet costs when a client
// floods random names (Amplification), and what a flood of unique first tries does to the server
// while its upstream is down (Stall). `make bench` prints both side by side; test/e2e holds
// raceguard to the bounds the README states, on shorter runs.
//
// Everything runs on loopback: the CoreDNS binary as its own process, the lab's upstream
// (test/lab/external.db, counting every query it gets, or dropping them all) in this one, and
// clients that are plain UDP sockets, each bound to an address of its own in 127.0.0.0/8 so that
// raceguard sees distinct clients. Every run is bounded in packets and in time.
package hostile

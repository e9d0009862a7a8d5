// Package reply turns a response that was resolved once into the reply one particular client
// gets. raceguard answers clients with messages it did not resolve for them: a search walk's
// answer, a candidate's remembered NXDOMAIN, a collapsed flight's response. Each such reply must
// look exactly as if it had been resolved for that client:
//
//   - a deep copy, never the shared message (miekg/dns#459: concurrent writers of one *dns.Msg);
//   - the client's message ID (miekg/dns#1145 gave waiters the leader's);
//   - the client's question, byte for byte, 0x20 case included;
//   - the client's RD and CD bits, and AD only if the client set DO or AD (RFC 6840 §5.7-5.8);
//   - the client's own EDNS: an OPT record only if the client sent one, with the client's UDP
//     size and DO bit, keeping the response's options except those that belong to one client or
//     one connection (COOKIE, client subnet, padding, TCP keepalive).
//
// Truncation to the client's size is left to the server's ScrubWriter, which every reply passes.
package reply

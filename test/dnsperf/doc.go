// Package dnsperf reads the output of dnsperf, DNS-OARC's DNS Performance Testing Tool, and
// writes its query files, for the programs that run it: test/bench and test/soak.
//
// A run prints its statistics at the end:
//
//	Statistics:
//
//	  Queries sent:         200
//	  Queries completed:    200 (100.00%)
//	  Queries lost:         0 (0.00%)
//
//	  Response codes:       NOERROR 100 (50.00%), SERVFAIL 50 (25.00%), NXDOMAIN 50 (25.00%)
//	  ...
//	  Queries per second:   30548.342752
//
//	  Average Latency (s):  0.001269 (min 0.000035, max 0.002063)
//
// and, with -v, a line per query as it ends: "> NOERROR web.default.svc.cluster.local A 0.000305",
// or "> T web.default.svc.cluster.local A" for a query it gave up on.
package dnsperf

// Package query reads the few facts about a client's query that raceguard's mechanisms key
// their state on: who sent it, which DNSSEC bits it carries, which of the A/AAAA pair it is,
// whether its name is in a directive's zones, and whether raceguard itself sent it (MarkOwn).
// They live here once so that the search walk, collapse, the sibling prefetcher and the
// fingerprint tracker agree on them: a walk remembered for one client under one (DO, CD) pair
// must be found again by the same client's sibling query under the same pair.
//
// Every function here runs on the path of every query, cache hits included, and allocates
// nothing.
package query

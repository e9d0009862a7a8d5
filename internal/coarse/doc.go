// Package coarse is a clock that costs one atomic load to read, for hot paths that need
// milliseconds, not nanoseconds. Reading the real clock costs 20 to 120 ns depending on the
// machine's clock source (the higher end on some virtual machines, this project's CI among them);
// raceguard's fingerprints read the time for every A and AAAA query.
//
// The clock ticks every Resolution while at least one user holds it (Acquire/Release), so an
// idle process runs no ticker.
package coarse

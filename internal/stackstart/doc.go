// Package stackstart makes new goroutines start with a stack deep enough for a query.
//
// miekg/dns serves each UDP query on a new goroutine. A goroutine starts with the runtime's
// starting stack size and grows by copying the whole stack (runtime.newstack, copystack) each
// time a call needs more. A cache hit of the default Kubernetes Corefile reaches about 5.5 KiB
// (the reply's sendmsg under cache, loadbalance, errors and prometheus), so a query that starts at
// 2 KiB is copied twice, at 4 and 8 KiB, and its grown stack is freed when it ends: 15 to 20 % of
// a server's CPU on cache hits.
//
// The runtime sizes the starting stack itself (adaptive stack start, Go 1.19): at each GC it is
// the mean used stack of the goroutines the GC scanned, plus the stack guard, rounded up to a
// power of two. A DNS server's goroutines are idle listeners and queries not yet started, with
// almost no stack, so the mean stays below 2 KiB. This package raises it: it parks goroutines
// (holders) whose stacks are used to about 28 KiB each, as many as keep the starting size between
// the target (8 KiB by default; RACEGUARD_STACK_START sets 4096 or 16384, or "off") and 16 KiB.
// A controller (control.go) reads runtime/metrics every 100 ms: the starting size each new GC
// chose, and for its first estimate the stack the last GC scanned and the goroutine count; once a
// second it adds or ends holders. It exports the holders, the target and the starting size.
//
// Every goroutine of the process then starts at 8 or 16 KiB: a query's goroutine needs no copy,
// and its stack goes back to the runtime's free list whole. The cost is memory: the holders'
// stacks, 32 KiB each, at most maxHolders (1.5 MiB; a saturated server on one core settles at 25
// to 42), and 8 or 16 KiB for each goroutine alive instead of what it uses, which the GC shrinks
// back where a goroutine uses less than a quarter. The holders' stacks also count in the GC's heap
// goal (GOGC applies to stacks), so collections come slightly less often. A server whose
// goroutines are so many and so shallow that maxHolders cannot lift the mean runs as without it.
//
// The mechanism belongs to the process: the first Acquire starts it, the last Release stops the
// controller and ends every holder (package process), so a reload keeps it and a final shutdown
// leaves no goroutine behind.
package stackstart

// Package bounded provides the capped, expiring, sharded map behind every raceguard table: the
// search walks in flight and remembered, the queries being collapsed, the DNS fingerprints.
//
// A Map never holds more than its capacity. The capacity is split evenly over the shards, so a
// key whose shard is full is refused a little before the whole map is. Entries carry an expiry and
// are dropped when a read finds them expired or when a full shard is swept to make room; when a
// shard is still full after the sweep, Put refuses the entry and the caller falls back to plain
// pass-through and counts the overflow. Shards keep one busy key from serialising the rest.
//
// A sweep walks the whole shard, so a full shard is not swept on every refusal: a table past its
// capacity (the fingerprints of a node doing more lookups than its window holds) refuses far more
// often than its entries expire, and a walk per refusal cost 12 µs a query. A shard is swept only
// once its earliest entry has expired, and at most once per 1/32 of the refused entry's TTL. The
// price is that an expired entry may hold its place for up to that long after its expiry: a full
// table runs a few percent below its capacity.
package bounded

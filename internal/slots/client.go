package slots

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// Client is a client's address hashed with a secret seed: the part of a table's key that names
// the client. A query's path hashes its client once and hands the same Client to every table
// that keys on it.
type Client uint64

// clientSeeds make the slot a client lands in unpredictable: an address is the client's to
// choose, and a chosen collision would take another client's entry over.
var clientSeeds = [2]uint64{rand.Uint64(), rand.Uint64()}

// ClientOf hashes addr. An IPv4-mapped IPv6 address is unmapped first, so that one client
// reaching a dual-stack socket is one key; an IPv4 address, the common case, takes one round of
// Mix, an IPv6 address two. A zone is not part of the key.
func ClientOf(addr netip.Addr) Client {
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return Client(Mix(uint64(binary.LittleEndian.Uint32(b[:])) ^ clientSeeds[0]))
	}
	b := addr.As16()
	return Client(Mix(binary.LittleEndian.Uint64(b[:8])^clientSeeds[0]) ^ Mix(binary.LittleEndian.Uint64(b[8:])^clientSeeds[1]))
}

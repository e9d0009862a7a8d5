package lab

import "testing"

func TestParseSNMP(t *testing.T) {
	text := `Ip: Forwarding DefaultTTL
Ip: 1 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 1000 2 31 900 29 1 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
`
	s, err := parseSNMP(text)
	if err != nil {
		t.Fatal(err)
	}
	if want := (UDPStats{InErrors: 31, RcvbufErrors: 29, SndbufErrors: 1}); s != want {
		t.Errorf("Expected %+v, got %+v", want, s)
	}
	if s.BufferDrops() != 30 || s.Sub(UDPStats{InErrors: 1, RcvbufErrors: 9}) != (UDPStats{30, 20, 1}) {
		t.Errorf("Expected 30 buffer drops and the growth {30 20 1}, got %d and %+v", s.BufferDrops(), s.Sub(UDPStats{InErrors: 1, RcvbufErrors: 9}))
	}
	if _, err := parseSNMP("Ip: Forwarding\nIp: 1\n"); err == nil {
		t.Error("Expected an error without Udp lines")
	}
	if _, err := ReadUDPStats(""); err != nil {
		t.Errorf("Expected this machine's own counters, got %v", err)
	}
}

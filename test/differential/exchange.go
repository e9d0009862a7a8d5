package differential

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// reply is a reply as received: its bytes and their parse.
type reply struct {
	raw []byte
	msg *dns.Msg
}

func (r *reply) String() string {
	if r == nil {
		return "<no reply>"
	}
	return fmt.Sprintf("(%d bytes)\n%v", len(r.raw), r.msg)
}

// exchange sends wire to addr over network and returns the reply, read into a 64 KiB buffer
// (for UDP) so that a reply larger than the client asked for is seen, not cut. A UDP query is
// resent from the same socket with the same bytes if no reply comes in 2 s, as a stub would.
func exchange(network, addr string, wire []byte) (*reply, error) {
	conn, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var raw []byte
	if network == "tcp" {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...)); err != nil {
			return nil, err
		}
		var l [2]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return nil, err
		}
		raw = make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(conn, raw); err != nil {
			return nil, err
		}
	} else {
		buf := make([]byte, 65535)
		id := binary.BigEndian.Uint16(wire)
		for try := 0; ; try++ {
			if _, err := conn.Write(wire); err != nil {
				return nil, err
			}
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && try < 3 {
				continue
			}
			if err != nil {
				return nil, err
			}
			if n >= 2 && binary.BigEndian.Uint16(buf) != id {
				return nil, fmt.Errorf("reply with ID %d to query ID %d", binary.BigEndian.Uint16(buf), id)
			}
			raw = slices.Clone(buf[:n])
			break
		}
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		return &reply{raw: raw}, fmt.Errorf("unpack reply (%d bytes): %w", len(raw), err)
	}
	return &reply{raw: raw, msg: m}, nil
}

// questionBytes returns the question section of the wire message raw, which must hold one
// uncompressed question.
func questionBytes(raw []byte) ([]byte, error) {
	if len(raw) < 12 {
		return nil, errors.New("short message")
	}
	if n := binary.BigEndian.Uint16(raw[4:]); n != 1 {
		return nil, fmt.Errorf("QDCOUNT %d", n)
	}
	off := 12
	for {
		if off >= len(raw) {
			return nil, errors.New("question name runs past the message")
		}
		l := int(raw[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 != 0 {
			return nil, errors.New("compressed question name")
		}
		off += 1 + l
	}
	if off+4 > len(raw) {
		return nil, errors.New("question runs past the message")
	}
	return raw[12 : off+4], nil
}

package hostile

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
)

// Flood is a stream of queries from a set of clients.
type Flood struct {
	Clients int                // clients, each a socket on its own address, 127.0.<Net>.1 and up
	Net     byte               // the third octet of the clients' addresses: floods at once differ in it
	Addrs   []net.IP           // instead of Clients and Net: the clients' addresses
	NS      string             // the network namespace of the clients' sockets; "": the caller's
	Rate    int                // queries a second, over all clients
	N       int                // queries in all
	Name    func(i int) string // the name of query i, fully qualified
	Type    uint16
	Wait    time.Duration // how long an answer is waited for: the client's first timeout
}

// FloodResult is what the clients of a Flood saw.
type FloodResult struct {
	Sent     int
	Answered int             // within Wait
	Rcodes   map[int]int     // of the answers
	Latency  []time.Duration // of the answers, sorted
	Mismatch int             // answers whose ID or question is not their query's
	Elapsed  time.Duration   // from the first query sent to the last answer waited for
}

// Quantile returns the q-quantile of the answers' latencies (0 with none).
func (r FloodResult) Quantile(q float64) time.Duration {
	if len(r.Latency) == 0 {
		return 0
	}
	return r.Latency[min(len(r.Latency)-1, int(q*float64(len(r.Latency))))]
}

// Unanswered is the queries with no answer within Wait.
func (r FloodResult) Unanswered() int { return r.Sent - r.Answered }

// floodClient is one socket of a flood and its queries in flight.
type floodClient struct {
	conn *net.UDPConn
	mu   sync.Mutex
	sent map[uint16]pending // protected by mu
	res  FloodResult        // protected by mu
}

type pending struct {
	name string
	at   time.Time
}

// Run sends f's queries to addr, paced at f.Rate, and returns once every answer has come or
// f.Wait has passed since the last query was sent.
func (f Flood) Run(addr string) (FloodResult, error) {
	addrs := f.Addrs
	if addrs == nil {
		for i := range f.Clients {
			addrs = append(addrs, net.IPv4(127, 0, f.Net, byte(i+1)))
		}
	}
	f.Clients = len(addrs)
	if f.Clients < 1 || f.Clients > 250 || f.Rate < 1 || f.N < 1 || f.Wait <= 0 {
		return FloodResult{}, errors.New("flood: want 1 to 250 clients, a rate, queries and a wait")
	}
	if f.N/f.Clients >= 1<<16 {
		return FloodResult{}, fmt.Errorf("flood: %d queries from %d clients reuse IDs", f.N, f.Clients)
	}
	server, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return FloodResult{}, err
	}
	clients := make([]*floodClient, f.Clients)
	for i := range clients {
		var conn *net.UDPConn
		err := lab.Do(f.NS, func() (err error) {
			conn, err = net.ListenUDP("udp", &net.UDPAddr{IP: addrs[i]})
			return err
		})
		if err != nil {
			for _, c := range clients[:i] {
				c.conn.Close()
			}
			return FloodResult{}, err
		}
		conn.SetReadBuffer(4 << 20)
		clients[i] = &floodClient{conn: conn, sent: map[uint16]pending{}, res: FloodResult{Rcodes: map[int]int{}}}
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.receive(f.Wait) })
	}

	start := time.Now()
	sent := 0
	for sent < f.N {
		due := min(f.N, int(time.Since(start).Seconds()*float64(f.Rate))+1)
		for ; sent < due; sent++ {
			c := clients[sent%len(clients)]
			id := uint16(sent / len(clients))
			m := new(dns.Msg).SetQuestion(f.Name(sent), f.Type)
			m.Id = id
			buf, err := m.Pack()
			if err != nil {
				return FloodResult{}, err
			}
			c.mu.Lock()
			c.sent[id] = pending{name: m.Question[0].Name, at: time.Now()}
			c.res.Sent++
			c.mu.Unlock()
			c.conn.WriteToUDP(buf, server) // a send error is a query unanswered
		}
		time.Sleep(time.Millisecond)
	}
	// Every query has been sent: the clients read until every answer is in, or f.Wait after the
	// last send.
	settle(f.Wait, func() bool {
		for _, c := range clients {
			c.mu.Lock()
			n := len(c.sent)
			c.mu.Unlock()
			if n > 0 {
				return false
			}
		}
		return true
	})
	for _, c := range clients {
		c.conn.SetReadDeadline(time.Now())
	}
	wg.Wait()

	res := FloodResult{Rcodes: map[int]int{}, Elapsed: time.Since(start)}
	for _, c := range clients {
		c.conn.Close()
		res.Sent += c.res.Sent
		res.Answered += c.res.Answered
		res.Mismatch += c.res.Mismatch
		res.Latency = append(res.Latency, c.res.Latency...)
		for rc, n := range c.res.Rcodes {
			res.Rcodes[rc] += n
		}
	}
	slices.Sort(res.Latency)
	return res, nil
}

// receive reads c's answers until its socket's read deadline passes.
func (c *floodClient) receive(wait time.Duration) {
	buf := make([]byte, 65535)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			return
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) != nil {
			c.mu.Lock()
			c.res.Mismatch++
			c.mu.Unlock()
			continue
		}
		now := time.Now()
		c.mu.Lock()
		p, ok := c.sent[m.Id]
		switch {
		case !ok || len(m.Question) != 1 || m.Question[0].Name != p.name:
			c.res.Mismatch++
		case now.Sub(p.at) <= wait:
			delete(c.sent, m.Id)
			c.res.Answered++
			c.res.Rcodes[m.Rcode]++
			c.res.Latency = append(c.res.Latency, now.Sub(p.at))
		default:
			delete(c.sent, m.Id) // too late: the client gave up on it
		}
		c.mu.Unlock()
	}
}

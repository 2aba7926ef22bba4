package stack

import (
	"testing"
	"time"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/timer"
)

// A registered transport (what TCP will be) gets its datagrams on the poll
// loop, answers through Output, and arms timers on the loop's queue.
func TestRegisteredTransport(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	const proto = 253 // RFC 3692 experimentation
	var got []byte
	var tm timer.Timer
	fired := 0
	tm.Init(func(time.Time) { fired++ })
	if err := p.b.RegisterTransport(proto, func(lp *Loop, ip header.IPv4, bcast bool) {
		got = append([]byte(nil), ip.Payload()...)
		lp.Output(ip.Dst(), ip.Src(), proto, 0, 64, []byte("re:"), ip.Payload())
		lp.Timers().Schedule(&tm, lp.Now().Add(time.Second))
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.b.RegisterTransport(header.IPProtocolUDP, func(*Loop, header.IPv4, bool) {}); err == nil {
		t.Fatal("replaced the built-in UDP")
	}
	var reply []byte
	p.a.RegisterTransport(proto, func(lp *Loop, ip header.IPv4, bcast bool) { reply = append([]byte(nil), ip.Payload()...) })
	p.settle()
	p.la.Inject(ipFrame(proto, 1, 0, false, []byte("ping")))
	p.settle()
	if string(got) != "ping" || string(reply) != "re:ping" {
		t.Fatalf("transport saw %q, reply %q", got, reply)
	}
	if p.b.Counters().Get(IPUnknownProto) != 0 {
		t.Fatal("registered protocol counted as unknown")
	}
	p.advance(2*time.Second, 100*time.Millisecond)
	if fired != 1 {
		t.Fatalf("loop timer fired %d times", fired)
	}
}

package netsim

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/verinic/verinic/proto/clock"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
)

// Epoch is where a simulation's virtual clock starts.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Host is one simulated machine: a stack with TCP on one endpoint.
type Host struct {
	Stack *stack.Stack
	TCP   *tcp.Protocol
	Addr  netip.Addr
	Link  *Endpoint
}

// Sim is two hosts, A (10.0.0.1) and B (10.0.0.2), on a wire, both on one
// fake clock and polled by the caller's goroutine only.
type Sim struct {
	Clock *clock.Fake
	Wire  *Wire
	A, B  *Host
}

// Options configures a simulation.
type Options struct {
	AB, BA Path
	// TCP configures both hosts' TCP (Rand is set per host from Seed).
	TCP tcp.Config
	// TCPB, if non-nil, configures B's TCP instead.
	TCPB *tcp.Config
	// Seed makes the hosts' ISN and cookie secrets.
	Seed uint64
	// Buffers per endpoint mempool (default 1024).
	Buffers int
}

// NewSim builds a simulation. Close it when done.
func NewSim(o Options) (*Sim, error) {
	s := &Sim{Clock: clock.NewFake(Epoch)}
	w, err := New(s.Clock.Now, Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Buffers: o.Buffers},
		Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Buffers: o.Buffers}, o.AB, o.BA)
	if err != nil {
		return nil, err
	}
	s.Wire = w
	for i, ep := range []*Endpoint{w.A, w.B} {
		h := &Host{Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), Link: ep}
		h.Stack = stack.New(stack.Config{Clock: s.Clock})
		cfg := o.TCP
		if i == 1 && o.TCPB != nil {
			cfg = *o.TCPB
		}
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], o.Seed)
		seed[8] = byte(i)
		cfg.Rand = rand.NewChaCha8(seed)
		if h.TCP, err = tcp.New(h.Stack, cfg); err != nil {
			w.Close()
			return nil, err
		}
		if _, err := h.Stack.AddNIC(ep, stack.NICConfig{}); err != nil {
			w.Close()
			return nil, err
		}
		if err := h.Stack.AddAddress(1, netip.PrefixFrom(h.Addr, 24)); err != nil {
			w.Close()
			return nil, err
		}
		if i == 0 {
			s.A = h
		} else {
			s.B = h
		}
	}
	return s, nil
}

// Close closes both stacks and frees the wire.
func (s *Sim) Close() {
	s.A.Stack.Close()
	s.B.Stack.Close()
	s.Wire.Close()
}

// Now returns the virtual time.
func (s *Sim) Now() time.Time { return s.Clock.Now() }

// Elapsed returns the virtual time since Epoch.
func (s *Sim) Elapsed() time.Duration { return s.Clock.Now().Sub(Epoch) }

// Settle polls both stacks until neither does any work, at most max rounds;
// it reports whether they went idle.
func (s *Sim) Settle(max int) bool {
	for i := 0; i < max; i++ {
		if s.A.Stack.Poll()+s.B.Stack.Poll() == 0 {
			return true
		}
	}
	return false
}

// NextEvent returns the time of the next thing that will happen by itself:
// a frame arriving or a timer of either stack falling due.
func (s *Sim) NextEvent() (time.Time, bool) {
	t, ok := s.Wire.NextArrival()
	for _, h := range []*Host{s.A, s.B} {
		for _, lp := range h.Stack.NIC(1).Loops() {
			if n, pending := lp.Timers().Next(); pending && (!ok || n.Before(t)) {
				t, ok = n, true
			}
		}
	}
	return t, ok
}

// Advance settles the stacks and moves the clock to the next event, at most
// to limit; it returns an error when the stacks do not go idle.
func (s *Sim) Advance(limit time.Time) error {
	if !s.Settle(10000) {
		return fmt.Errorf("netsim: stacks still busy after 10000 polls at %v", s.Elapsed())
	}
	next, ok := s.NextEvent()
	if !ok || next.After(limit) {
		next = limit
	}
	if next.After(s.Clock.Now()) {
		s.Clock.Set(next)
	}
	return nil
}

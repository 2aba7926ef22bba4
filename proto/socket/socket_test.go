package socket

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/clock"
	"pgregory.net/rapid"
)

// Property: the queue is a FIFO of datagrams that accepts a datagram exactly
// when it fits (bytes counted contiguously, records counted), returns each
// unchanged, and never uses more than its capacity.
func TestDatagramQueueIsBoundedFIFO(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.IntRange(0, 300).Draw(t, "size")
		recs := rapid.IntRange(1, 6).Draw(t, "records")
		q := NewDatagramQueue(size, recs)
		var model [][]byte
		for step := 0; step < 100; step++ {
			if rapid.Bool().Draw(t, "push") {
				n := rapid.IntRange(0, 120).Draw(t, "len")
				p := make([]byte, n)
				for i := range p {
					p[i] = byte(step + i)
				}
				split := rapid.IntRange(0, n).Draw(t, "split")
				ok := q.Push(Meta{Seq: uint32(step)}, p[:split], p[split:])
				if n > size && ok {
					t.Fatalf("accepted %d bytes into a %d-byte queue", n, size)
				}
				if len(model) == recs && ok {
					t.Fatalf("accepted record %d of %d", len(model)+1, recs)
				}
				if len(model) == 0 && n <= size && !ok {
					t.Fatalf("empty queue refused %d of %d bytes", n, size)
				}
				if ok {
					model = append(model, p)
				}
			} else {
				buf := make([]byte, 64)
				n, full, _, ok := q.Pop(buf)
				if ok != (len(model) > 0) {
					t.Fatalf("Pop ok=%v with %d queued", ok, len(model))
				}
				if ok {
					want := model[0]
					model = model[1:]
					if full != len(want) || n != min(64, len(want)) || !bytes.Equal(buf[:n], want[:n]) {
						t.Fatalf("Pop got %d/%d bytes, want %d", n, full, len(want))
					}
				}
			}
			if q.Used() > size || q.Len() != len(model) {
				t.Fatalf("used %d of %d, len %d want %d", q.Used(), size, q.Len(), len(model))
			}
		}
	})
}

func TestDatagramQueueZeroAlloc(t *testing.T) {
	q := NewDatagramQueue(4096, 16)
	payload := make([]byte, 100)
	buf := make([]byte, 200)
	m := Meta{Remote: netip.MustParseAddrPort("10.0.0.1:53")}
	allocs := testing.AllocsPerRun(1000, func() {
		q.Push(m, payload[:8], payload)
		q.Pop(buf)
	})
	if allocs != 0 {
		t.Fatalf("Push+Pop allocate %v", allocs)
	}
}

func TestDeadlineSemantics(t *testing.T) {
	c := clock.NewFake(time.Unix(100, 0))
	var b Base
	b.Init(c)
	if err := b.CheckRead(); err != nil {
		t.Fatalf("fresh socket: %v", err)
	}
	b.ReadDeadline.Set(c.Now().Add(time.Second))
	done := make(chan error, 1)
	go func() { done <- b.WaitReadable() }()
	select {
	case err := <-done:
		t.Fatalf("wait returned early: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	c.Advance(time.Second)
	if err := <-done; !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("wait after deadline: %v", err)
	}
	if err := b.CheckRead(); !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("check after deadline: %v", err)
	}
	// Extending the deadline makes reads wait again.
	b.ReadDeadline.Set(c.Now().Add(time.Second))
	if err := b.CheckRead(); err != nil {
		t.Fatalf("after extending: %v", err)
	}
	// A deadline in the past fails at once; clearing it restores.
	b.ReadDeadline.Set(c.Now().Add(-time.Second))
	if err := b.CheckRead(); !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
	b.ReadDeadline.Set(time.Time{})
	if err := b.CheckRead(); err != nil {
		t.Fatalf("cleared: %v", err)
	}
	// Close wakes a waiter with ErrClosed.
	go func() { done <- b.WaitReadable() }()
	time.Sleep(10 * time.Millisecond)
	if !b.MarkClosed() || b.MarkClosed() {
		t.Fatal("MarkClosed: want true then false")
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after close: %v", err)
	}
	// A pending deadline timer is released by Close.
	if c.Pending() != 0 {
		t.Fatalf("%d timers left after close", c.Pending())
	}
}

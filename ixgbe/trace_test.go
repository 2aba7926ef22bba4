package ixgbe

import (
	"fmt"
	"testing"

	"github.com/verinic/verinic/trace"
)

// ringKey names one descriptor ring in a trace.
type ringKey struct {
	dev   uint16
	dir   uint8
	queue uint16
}

// checkTraceOrder checks the ordering rule of trace/trace.go on a trace
// recorded by the driver and the simulator together:
//   - the driver posts a descriptor only while the device does not own it:
//     outside [head, tail), with head from the device's DevHead events and
//     tail from the driver's DrvTail events (a post recorded after the tail
//     write that published it lands inside that window);
//   - DD seen on a descriptor follows the device's write-back of it, after
//     the driver last posted it (observations are recorded after the load);
//   - an RX buffer handed up is the buffer last posted in its descriptor,
//     and was written back first.
func checkTraceOrder(events []trace.Event, ringSize uint32) error {
	type ringState struct {
		head, tail uint32
		postBuf    map[uint32]uint64
		wroteBack  map[uint32]bool // write-back since the last post
	}
	rings := map[ringKey]*ringState{}
	get := func(e trace.Event) *ringState {
		k := ringKey{e.Dev, e.Dir, e.Queue}
		r := rings[k]
		if r == nil {
			r = &ringState{postBuf: map[uint32]uint64{}, wroteBack: map[uint32]bool{}}
			rings[k] = r
		}
		return r
	}
	owned := func(i, head, tail uint32) bool { // i in [head, tail)
		return (i+ringSize-head)%ringSize < (tail+ringSize-head)%ringSize
	}
	for _, e := range events {
		r := get(e)
		where := fmt.Sprintf("event %d (%s dev %d dir %d queue %d index %d)", e.Seq, e.Kind, e.Dev, e.Dir, e.Queue, e.Index)
		switch e.Kind {
		case trace.DrvPost:
			if e.Index >= ringSize {
				return fmt.Errorf("%s: index outside a ring of %d", where, ringSize)
			}
			if owned(e.Index, r.head, r.tail) {
				return fmt.Errorf("%s: posted while the device owns it (head %d, tail %d)", where, r.head, r.tail)
			}
			r.postBuf[e.Index] = e.Buf
			r.wroteBack[e.Index] = false
		case trace.DrvTail:
			r.tail = e.Index
		case trace.DevHead:
			r.head = e.Index
		case trace.DevWriteBack:
			r.wroteBack[e.Index] = true
		case trace.DrvDDSeen:
			if !r.wroteBack[e.Index] {
				return fmt.Errorf("%s: DD seen before the device wrote the descriptor back", where)
			}
		case trace.DrvReclaim:
			if e.Dir == trace.RX && r.postBuf[e.Index] != e.Buf {
				return fmt.Errorf("%s: handed up buffer %#x, but %#x was posted there", where, e.Buf, r.postBuf[e.Index])
			}
			if e.Dir == trace.RX && !r.wroteBack[e.Index] {
				return fmt.Errorf("%s: handed up before the device wrote it", where)
			}
		}
	}
	return nil
}

func TestTraceOrderingSim(t *testing.T) {
	rec := trace.NewRecorder(1 << 20)
	if err := runScenario(t, 0, rec); err != nil {
		t.Fatal(err)
	}
	if rec.Dropped() != 0 {
		t.Fatalf("%d events did not fit", rec.Dropped())
	}
	ev := rec.Events()
	kinds := map[trace.Kind]int{}
	for _, e := range ev {
		kinds[e.Kind]++
	}
	for _, k := range []trace.Kind{trace.DrvPost, trace.DrvTail, trace.DrvDDSeen, trace.DrvReclaim, trace.DevWriteBack} {
		if kinds[k] == 0 {
			t.Fatalf("no %s events in a trace of %d", k, len(ev))
		}
	}
	if err := checkTraceOrder(ev, rapidRing); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events checked: %v", len(ev), kinds)
	// bugs_test.go (-tags ixgbebugs) checks that it catches bugs that
	// break the ordering.
}

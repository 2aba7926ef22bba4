package reassembly

import (
	"bytes"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/timer"
	"pgregory.net/rapid"
)

var t0 = time.Unix(1000, 0)

func hdr(id byte) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	h[4] = id
	return h
}

type fragSpec struct {
	off  int
	data []byte
	more bool
}

func split(payload []byte, size int) []fragSpec {
	var fs []fragSpec
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		fs = append(fs, fragSpec{off, payload[off:end], end < len(payload)})
	}
	return fs
}

// Property: fragments of a datagram offered in any order, with exact
// duplicates mixed in, reassemble into the original, exactly once, and
// leave no memory behind.
func TestAnyOrderReassembles(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q timer.Queue
		// Room for every fragment in a block of its own (a scrambled
		// order of 1000 tiny fragments makes as many runs): the property
		// is about order and duplicates, not the memory limits, which
		// have tests of their own.
		r := New(Config{MaxFragments: 1100, MaxBytes: 1100 * DefaultBlockSize, MaxBytesPerSource: 1100 * DefaultBlockSize}, &q)
		n := rapid.IntRange(1, 8000).Draw(t, "len")
		size := 8 * rapid.IntRange(1, 185).Draw(t, "size8")
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		fs := split(payload, size)
		idx := make([]int, len(fs))
		for i := range idx {
			idx[i] = i
		}
		idx = rapid.Permutation(idx).Draw(t, "order")
		var order []fragSpec
		for _, i := range idx {
			order = append(order, fs[i])
		}
		// Duplicates of fragments other than the completing (last) one,
		// inserted anywhere before it.
		if len(order) > 1 {
			dups := rapid.IntRange(0, 3).Draw(t, "dups")
			for i := 0; i < dups; i++ {
				j := rapid.IntRange(0, len(order)-2).Draw(t, "dup")
				at := rapid.IntRange(j+1, len(order)-1).Draw(t, "at")
				order = append(order[:at], append([]fragSpec{order[j]}, order[at:]...)...)
			}
		}
		k := Key{Src: [4]byte{1, 2, 3, 4}, Dst: [4]byte{5, 6, 7, 8}, ID: 9, Proto: 17}
		completed := 0
		for _, f := range order {
			out, ip := r.Add(k, hdr(9), f.off, f.more, f.data, t0, nil)
			if out == Complete {
				completed++
				if !bytes.Equal(ip[20:], payload) || int(ip[2])<<8|int(ip[3]) != 20+n {
					t.Fatalf("reassembled datagram differs (len %d)", len(ip))
				}
			}
		}
		if completed != 1 {
			t.Fatalf("datagram of %d bytes in %d fragments completed %d times", n, len(fs), completed)
		}
		if r.InProgress() != 0 || r.MemoryInUse() != 0 {
			t.Fatalf("left %d datagrams, %d bytes", r.InProgress(), r.MemoryInUse())
		}
	})
}

func TestOverlapDropsDatagram(t *testing.T) {
	var q timer.Queue
	r := New(Config{}, &q)
	k := Key{ID: 1, Proto: 17}
	data := make([]byte, 64)
	if out, _ := r.Add(k, hdr(1), 0, true, data[:32], t0, nil); out != Queued {
		t.Fatal(out)
	}
	// Overlaps [0,32) by 8 bytes: the whole datagram goes.
	if out, _ := r.Add(k, hdr(1), 24, false, data[:16], t0, nil); out != Dropped {
		t.Fatalf("overlap: %v", out)
	}
	if r.Counters().Overlaps.Load() != 1 || r.InProgress() != 0 || r.MemoryInUse() != 0 {
		t.Fatalf("after overlap: overlaps=%d inprogress=%d mem=%d", r.Counters().Overlaps.Load(), r.InProgress(), r.MemoryInUse())
	}
	// Later fragments of the dropped datagram are discarded (a tombstone
	// until its timeout), not kept as a new datagram.
	if out, _ := r.Add(k, hdr(1), 0, true, data[:32], t0, nil); out != Dropped || r.Counters().AfterDrop.Load() != 1 || r.MemoryInUse() != 0 {
		t.Fatalf("fragment after the drop: %v, after_drop %d", out, r.Counters().AfterDrop.Load())
	}
	k = Key{ID: 2, Proto: 17}
	// Exact duplicate: ignored, datagram kept.
	r.Add(k, hdr(1), 0, true, data[:32], t0, nil)
	if out, _ := r.Add(k, hdr(1), 0, true, data[:32], t0, nil); out != Duplicate {
		t.Fatalf("duplicate: %v", out)
	}
	// A non-final fragment whose length is not a multiple of 8: malformed.
	if out, _ := r.Add(k, hdr(1), 32, true, data[:12], t0, nil); out != Dropped || r.Counters().Malformed.Load() != 1 {
		t.Fatalf("odd length: %v", out)
	}
	// Conflicting ends: a last fragment ending before data already held.
	r.Add(k, hdr(1), 40, true, data[:8], t0, nil)
	if out, _ := r.Add(k, hdr(1), 32, false, data[:0], t0, nil); out != Dropped || r.InProgress() != 0 {
		t.Fatalf("short last fragment: %v, in progress %d", out, r.InProgress())
	}
}

func TestTimeoutDropsAndQuotes(t *testing.T) {
	var q timer.Queue
	var quoted []byte
	r := New(Config{Timeout: 30 * time.Second, TimeExceeded: func(b []byte) { quoted = append([]byte(nil), b...) }}, &q)
	k := Key{ID: 2, Proto: 1}
	first := []byte("ABCDEFGHIJKLMNOP")
	r.Add(k, hdr(2), 0, true, first, t0, nil)
	if q.Run(t0.Add(29*time.Second)) != 0 || r.InProgress() != 1 {
		t.Fatal("expired early")
	}
	q.Run(t0.Add(30 * time.Second))
	if r.InProgress() != 0 || r.Counters().Timeouts.Load() != 1 || r.MemoryInUse() != 0 {
		t.Fatalf("after timeout: in progress %d, timeouts %d", r.InProgress(), r.Counters().Timeouts.Load())
	}
	// The header as received and the whole (short) first fragment: RFC
	// 1812 4.3.2.3 quotes as much as fits in 576 bytes.
	if len(quoted) != 20+len(first) || !bytes.Equal(quoted[:20], hdr(2)) || !bytes.Equal(quoted[20:], first) {
		t.Fatalf("quote = %x", quoted)
	}
	// A datagram whose first fragment never came times out silently.
	quoted = nil
	r.Add(Key{ID: 3}, hdr(3), 8, true, first, t0, nil)
	q.Run(t0.Add(time.Hour))
	if quoted != nil || r.Counters().Timeouts.Load() != 2 {
		t.Fatal("quoted a datagram without its first fragment")
	}
}

// A flood of fragments that never complete, from many datagrams and with
// endless fragments per datagram, keeps memory and datagram count under the
// limits and allocates nothing.
func TestFloodStaysBounded(t *testing.T) {
	var q timer.Queue
	cfg := Config{MaxBytes: 64 << 10, MaxDatagrams: 16, MaxFragments: 8}
	r := New(cfg, &q)
	data := make([]byte, 1480)
	id := 0
	flood := func() {
		id++
		k := Key{ID: uint16(id % 1000), Proto: 17, Src: [4]byte{byte(id >> 8)}}
		// Never the last fragment, so nothing completes.
		r.Add(k, hdr(0), 8*(id%7000), true, data[:1480], t0, nil)
		if r.MemoryInUse() > r.MemoryLimit() || r.InProgress() > cfg.MaxDatagrams {
			t.Fatalf("memory %d of %d, datagrams %d", r.MemoryInUse(), r.MemoryLimit(), r.InProgress())
		}
	}
	for i := 0; i < 5000; i++ {
		flood()
	}
	if allocs := testing.AllocsPerRun(2000, flood); allocs != 0 {
		t.Fatalf("fragment flood allocates %v per fragment", allocs)
	}
	c := r.Counters()
	if c.MemoryEvicted.Load() == 0 {
		t.Fatal("flood never hit a limit")
	}
	t.Logf("memory %d/%d, evicted %d, overlaps %d, too many %d", r.MemoryInUse(), r.MemoryLimit(), c.MemoryEvicted.Load(), c.Overlaps.Load(), c.TooManyFrags.Load())
	// One datagram fed endless distinct fragments hits MaxFragments.
	k := Key{ID: 60000}
	for off := 0; off < 8*100; off += 8 {
		r.Add(k, hdr(0), off, true, data[:8], t0, nil)
	}
	if c.TooManyFrags.Load() == 0 {
		t.Fatal("endless fragments never hit MaxFragments")
	}
}

// A long first fragment is quoted up to QuoteMax bytes, header included.
func TestTimeoutQuoteCapped(t *testing.T) {
	var q timer.Queue
	var quoted []byte
	r := New(Config{TimeExceeded: func(b []byte) { quoted = append([]byte(nil), b...) }}, &q)
	r.Add(Key{ID: 9}, hdr(9), 0, true, make([]byte, 1480), t0, nil)
	q.Run(t0.Add(time.Hour))
	if len(quoted) != QuoteMax {
		t.Fatalf("quote of %d bytes, want %d", len(quoted), QuoteMax)
	}
}

// A datagram dropped for having more than MaxFragments fragments leaves no
// memory behind: its later (tail) fragments are discarded on arrival, not
// kept as a new datagram until the timeout (issue 12).
func TestTooManyFragmentsTailHoldsNothing(t *testing.T) {
	var q timer.Queue
	r := New(Config{MaxFragments: 64}, &q)
	k := Key{Src: [4]byte{10, 0, 0, 1}, ID: 5, Proto: 17}
	for i := 0; i < 100; i++ {
		r.Add(k, hdr(5), i*16, true, make([]byte, 8), t0, nil)
	}
	c := r.Counters()
	if c.TooManyFrags.Load() != 1 || r.MemoryInUse() != 0 || r.InProgress() != 0 {
		t.Fatalf("after 100 fragments: too many %d, memory %d, in progress %d; want 1, 0, 0", c.TooManyFrags.Load(), r.MemoryInUse(), r.InProgress())
	}
	if c.AfterDrop.Load() != 35 {
		t.Fatalf("tail fragments discarded: %d, want 35", c.AfterDrop.Load())
	}
	// After the timeout the identification is free again.
	q.Run(t0.Add(DefaultTimeout))
	if out, _ := r.Add(k, hdr(5), 0, false, make([]byte, 8), t0.Add(DefaultTimeout), nil); out != Complete {
		t.Fatalf("after the timeout: %v, want Complete", out)
	}
}

// Tiny fragments in order share arena blocks (as Linux chains them into
// runs): 64 fragments of 8 bytes hold one 2 KiB block, not 64.
func TestTinyFragmentsShareBlocks(t *testing.T) {
	var q timer.Queue
	r := New(Config{}, &q)
	k := Key{Src: [4]byte{10, 0, 0, 1}, ID: 6, Proto: 17}
	for i := 0; i < 63; i++ {
		if out, _ := r.Add(k, hdr(6), i*8, true, make([]byte, 8), t0, nil); out != Queued {
			t.Fatalf("fragment %d: %v", i, out)
		}
	}
	if r.MemoryInUse() != DefaultBlockSize {
		t.Fatalf("63 in-order 8-byte fragments hold %d bytes, want one block (%d)", r.MemoryInUse(), DefaultBlockSize)
	}
	// A duplicate inside the run is a duplicate (Linux: IPFRAG_DUP).
	if out, _ := r.Add(k, hdr(6), 80, true, make([]byte, 8), t0, nil); out != Duplicate {
		t.Fatalf("duplicate inside a run: %v", out)
	}
	data := make([]byte, 8)
	data[0] = 9
	out, ip := r.Add(k, hdr(6), 63*8, false, data, t0, nil)
	if out != Complete || len(ip) != 20+64*8 || ip[20+63*8] != 9 {
		t.Fatalf("last fragment: %v, %d bytes", out, len(ip))
	}
}

// One source's fragments cannot take more than its share (a quarter of the
// datagrams and of the memory): a flood from one source evicts its own
// datagrams, and another source's complete.
func TestPerSourceShare(t *testing.T) {
	var q timer.Queue
	r := New(Config{MaxBytes: 64 * DefaultBlockSize, MaxDatagrams: 16}, &q)
	flood := [4]byte{10, 0, 0, 66}
	good := [4]byte{10, 0, 0, 1}
	payload := make([]byte, 3*1480)
	done := 0
	for round := 0; round < 50; round++ {
		k := Key{Src: good, ID: uint16(round), Proto: 17}
		for f := 0; f < 3; f++ {
			for j := 0; j < 40; j++ {
				fk := Key{Src: flood, ID: uint16(round*40 + j), Proto: 17}
				r.Add(fk, hdr(1), 8*(j%100), true, make([]byte, 1480), t0, nil)
			}
			if out, _ := r.Add(k, hdr(2), f*1480, f < 2, payload[f*1480:(f+1)*1480], t0, nil); out == Complete {
				done++
			}
		}
	}
	if done != 50 {
		t.Fatalf("%d of 50 datagrams from the other source reassembled under the flood (%+v)", done, r.Counters())
	}
}

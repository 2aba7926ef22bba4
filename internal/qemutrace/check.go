package qemutrace

import (
	"fmt"
	"sort"
	"strings"

	"github.com/verinic/verinic/models"
	"github.com/verinic/verinic/trace"
)

// Check names, as Report prints them.
const (
	// TxFetchMatchesPost: every TX descriptor QEMU fetched is the next one
	// the driver posted on one of its TX rings, holding what the post says:
	// the first quadword (buffer address; a context descriptor's
	// VLAN/MAC/IP lengths), and for a data descriptor DTALEN equal to the
	// post's length and RS set unless the post says PostNoRS (82576
	// datasheet 7.2.2.3, advanced TX data descriptor; the same layout as
	// the 82599's 7.2.3.2.4).
	TxFetchMatchesPost = "TxFetchMatchesPost"
	// RxFetchMatchesPost: every RX descriptor QEMU fetched on queue q wrote
	// into the buffer the driver posted next on an RX ring q, at the
	// descriptor address that ring's base plus 16 x the post's index gives
	// (one base per ring throughout).
	RxFetchMatchesPost = "RxFetchMatchesPost"
	// RxLengthMatchesDriver: the bytes QEMU wrote into each RX descriptor's
	// buffer are the length the driver read from that descriptor's
	// write-back (its dd_seen, in order on the ring).
	RxLengthMatchesDriver = "RxLengthMatchesDriver"
	// CompletionsFetched: every TX descriptor the driver reclaimed and every
	// RX descriptor it saw DD on had been fetched by QEMU: the driver saw
	// no completion that the device never made.
	CompletionsFetched = "CompletionsFetched"
	// TailWritesMatch: QEMU saw, per direction and queue, exactly the tail
	// values the driver says it wrote (as multisets: QEMU's events do not
	// say which device a register write went to), apart from writes of 0
	// before the queue's first fetch (queue set-up; Report.SetupTailWrites).
	TailWritesMatch = "TailWritesMatch"
)

const maxFailures = 5 // kept per check; all are counted

// Report is the outcome of Check.
type Report struct {
	TxFetches, RxFetches, TailWrites int // QEMU events matched to the driver's
	// SetupTailWrites are writes of 0 to a tail before QEMU fetched
	// anything on that queue: queue set-up, which hands nothing over and
	// which the driver does not record as a tail event; not compared.
	SetupTailWrites              int
	TxPosts, RxPosts, TailEvents int // the driver's, on the rings compared
	FailCount                    int
	ByCheck                      map[string]int
	Failures                     []string // the first of each check
	// Device is QEMU's account in the trace schema, attributed to the
	// driver's rings by the matching: dev_fetch (TX: buf, len; RX: index,
	// buf), dev_dma (RX: buf, len) and, where the trace has one device,
	// dev_tail_write. Seq is the order of QEMU's log; T is 0 (QEMU's
	// events carry no clock comparable with the driver's).
	Device []trace.Event
}

// OK reports whether every check held.
func (r *Report) OK() bool { return r.FailCount == 0 }

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "QEMU fetched %d TX descriptors (of %d posted) and %d RX descriptors (of %d posted) as the driver posted them; %d tail writes (driver: %d; %d set-up writes of 0 besides)",
		r.TxFetches, r.TxPosts, r.RxFetches, r.RxPosts, r.TailWrites, r.TailEvents, r.SetupTailWrites)
	if r.FailCount > 0 {
		var names []string
		for k, n := range r.ByCheck {
			names = append(names, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(names)
		fmt.Fprintf(&b, "; %d failures (%s):\n  %s", r.FailCount, strings.Join(names, ", "), strings.Join(r.Failures, "\n  "))
	}
	return b.String()
}

func (r *Report) fail(check, format string, args ...any) {
	r.FailCount++
	r.ByCheck[check]++
	if r.ByCheck[check] <= maxFailures {
		r.Failures = append(r.Failures, check+": "+fmt.Sprintf(format, args...))
	}
}

// ring is one driver ring's posts and RX lengths in trace order, with how
// far QEMU's events have consumed them.
type ring struct {
	key      models.RingKey
	posts    []trace.Event
	next     int                // first post not yet fetched
	fetched  map[uint64]int     // seq of a post -> times fetched
	lengths  []uint32           // RX: dd_seen lengths in order
	nextLen  int                // RX: first length not yet matched
	base     uint64             // RX: descriptor ring address, once known
	haveBase bool               //
	complete []trace.Event      // TX reclaims and RX dd_seen, for CompletionsFetched
	postAt   map[uint32][]int64 // index -> seqs of posts there, in order
}

// Descriptor bits (82576 datasheet 7.2.2.3, the same as the 82599's
// 7.2.3.2.4 and models/devtruth.go).
const (
	txdLenMask  = 0xFFFF
	txdRS       = 1 << 27
	txdDEXT     = 1 << 29
	txdDTYPMask = 0xF << 20
	txdDTYPData = 0x3 << 20
	txdDTYPCtx  = 0x2 << 20
	rxDescBytes = 16
)

// Check holds QEMU's events (Parse) against a driver's ring trace of the
// same run (the QEMU trace window around it: guest.QEMUTraceOn/Off). See
// the check names above. Register writes other than the ring tails, and
// events on queues the trace has no ring for, are ignored.
func Check(h trace.Header, driver []trace.Event, qemu []Event) *Report {
	rep := &Report{ByCheck: map[string]int{}}
	rings := map[models.RingKey]*ring{}
	get := func(k models.RingKey) *ring {
		r := rings[k]
		if r == nil {
			r = &ring{key: k, fetched: map[uint64]int{}, postAt: map[uint32][]int64{}}
			rings[k] = r
		}
		return r
	}
	driverTails := map[[3]uint64]int{} // dir, queue, value
	tailDevs := map[[2]uint64]map[uint16]bool{}
	for _, e := range driver {
		k := models.RingKey{Dev: e.Dev, Dir: e.Dir, Queue: e.Queue}
		switch e.Kind {
		case trace.DrvPost:
			r := get(k)
			r.postAt[e.Index] = append(r.postAt[e.Index], int64(e.Seq))
			r.posts = append(r.posts, e)
			if e.Dir == trace.TX {
				rep.TxPosts++
			} else {
				rep.RxPosts++
			}
		case trace.DrvDDSeen:
			if e.Dir == trace.RX {
				r := get(k)
				r.lengths = append(r.lengths, e.Len)
				r.complete = append(r.complete, e)
			}
		case trace.DrvReclaim:
			if e.Dir == trace.TX {
				get(k).complete = append(get(k).complete, e)
			}
		case trace.DrvTail:
			driverTails[[3]uint64{uint64(e.Dir), uint64(e.Queue), uint64(e.Index)}]++
			dq := [2]uint64{uint64(e.Dir), uint64(e.Queue)}
			if tailDevs[dq] == nil {
				tailDevs[dq] = map[uint16]bool{}
			}
			tailDevs[dq][e.Dev] = true
			rep.TailEvents++
		}
	}
	var txRings []*ring
	rxRings := map[uint16][]*ring{}
	for _, r := range rings {
		if r.key.Dir == trace.TX {
			txRings = append(txRings, r)
		} else {
			rxRings[r.key.Queue] = append(rxRings[r.key.Queue], r)
		}
	}
	sort.Slice(txRings, func(i, j int) bool { return lessKey(txRings[i].key, txRings[j].key) })

	emit := func(e trace.Event) {
		e.Seq = uint64(len(rep.Device))
		rep.Device = append(rep.Device, e)
	}
	qemuTails := map[[3]uint64]int{}
	// Queues on which QEMU has fetched a descriptor, per direction: a write
	// of 0 to a tail before that is queue set-up (head and tail both 0,
	// nothing handed over), which the driver's trace does not record.
	active := map[[2]uint64]bool{}
	for i := 0; i < len(qemu); i++ {
		q := qemu[i]
		switch q.Kind {
		case RegWrite:
			dir, queue, ok := tailRegister(q.Addr)
			if !ok {
				continue
			}
			if q.Val == 0 && !active[[2]uint64{uint64(dir), uint64(queue)}] {
				rep.SetupTailWrites++
				continue
			}
			qemuTails[[3]uint64{uint64(dir), uint64(queue), q.Val}]++
			rep.TailWrites++
			if devs := tailDevs[[2]uint64{uint64(dir), uint64(queue)}]; len(devs) == 1 {
				for dev := range devs {
					emit(trace.Event{Kind: trace.DevTailWrite, Dev: dev, Dir: dir, Queue: queue, Index: uint32(q.Val)})
				}
			}
		case TxDescr:
			match := nextPostOf(txRings, q.Buf)
			if match == nil {
				rep.fail(TxFetchMatchesPost, "QEMU fetched a TX descriptor (log line %d: first quadword %#x, cmd_type_len %#x) that is no ring's next post", q.Line, q.Buf, q.Lower)
				continue
			}
			p := match.posts[match.next]
			match.next++
			match.fetched[p.Seq]++
			rep.TxFetches++
			active[[2]uint64{uint64(trace.TX), uint64(p.Queue)}] = true
			if why := txMismatch(p, q); why != "" {
				rep.fail(TxFetchMatchesPost, "%s descriptor %d (post seq %d, log line %d): %s", match.key, p.Index, p.Seq, q.Line, why)
			}
			emit(trace.Event{Kind: trace.DevFetch, Dev: p.Dev, Dir: trace.TX, Queue: p.Queue, Index: p.Index, Buf: q.Buf, Len: q.Lower & txdLenMask, Aux: uint64(q.Upper)<<32 | uint64(q.Lower)})
		case RxDescr:
			// The descriptor's buffer writes follow it, up to the next
			// fetch (or the frame's end).
			var buf uint64
			var n uint32
			wrote := false
			for i+1 < len(qemu) && (qemu[i+1].Kind == RxBufWrite || qemu[i+1].Kind == RxWritten) {
				i++
				if w := qemu[i]; w.Kind == RxBufWrite && w.Ring == 1 {
					if wrote && w.Buf != buf {
						rep.fail(RxFetchMatchesPost, "QEMU wrote one RX descriptor's frame into two buffers, %#x and %#x (log line %d)", buf, w.Buf, w.Line)
					}
					buf, wrote = w.Buf, true
					n += w.Len
				}
			}
			if !wrote {
				rep.fail(RxFetchMatchesPost, "QEMU fetched RX descriptor %#x of queue %d (log line %d) and wrote no buffer", q.Addr, q.Ring, q.Line)
				continue
			}
			match := nextPostOf(rxRings[uint16(q.Ring)], buf)
			if match == nil {
				rep.fail(RxFetchMatchesPost, "QEMU wrote a frame into buffer %#x from RX descriptor %#x of queue %d (log line %d): no RX ring %d's next post holds that buffer", buf, q.Addr, q.Ring, q.Line, q.Ring)
				continue
			}
			p := match.posts[match.next]
			match.next++
			match.fetched[p.Seq]++
			rep.RxFetches++
			active[[2]uint64{uint64(trace.RX), uint64(p.Queue)}] = true
			base := q.Addr - uint64(p.Index)*rxDescBytes
			if !match.haveBase {
				match.base, match.haveBase = base, true
			} else if base != match.base {
				rep.fail(RxFetchMatchesPost, "%s descriptor %d (post seq %d): QEMU fetched it at %#x, not at the ring's %#x + 16 x %d (log line %d)", match.key, p.Index, p.Seq, q.Addr, match.base, p.Index, q.Line)
			}
			if match.nextLen >= len(match.lengths) {
				// The driver had not seen this one yet when its trace ended.
			} else if l := match.lengths[match.nextLen]; l != n {
				rep.fail(RxLengthMatchesDriver, "%s descriptor %d (post seq %d): QEMU wrote %d bytes, the driver read length %d (log line %d)", match.key, p.Index, p.Seq, n, l, q.Line)
				match.nextLen++
			} else {
				match.nextLen++
			}
			emit(trace.Event{Kind: trace.DevFetch, Dev: p.Dev, Dir: trace.RX, Queue: p.Queue, Index: p.Index, Buf: buf, Aux: q.Addr})
			emit(trace.Event{Kind: trace.DevDMA, Dev: p.Dev, Dir: trace.RX, Queue: p.Queue, Index: p.Index, Buf: buf, Len: n})
		}
	}

	// Completions the device never made: the driver's reclaims (TX) and
	// DD observations (RX) of descriptors QEMU did not fetch.
	for _, r := range rings {
		seen := map[uint64]int{}
		for _, c := range r.complete {
			// The latest post to that index before the completion.
			var post int64 = -1
			for _, s := range r.postAt[c.Index] {
				if s < int64(c.Seq) {
					post = s
				}
			}
			if post < 0 {
				continue // a completion without a post is the ring check's business
			}
			seen[uint64(post)]++
			if seen[uint64(post)] > 1 {
				continue
			}
			if r.fetched[uint64(post)] == 0 {
				rep.fail(CompletionsFetched, "%s descriptor %d: the driver %s it (seq %d) but QEMU never fetched the post (seq %d)",
					r.key, c.Index, map[bool]string{true: "reclaimed", false: "saw DD on"}[c.Kind == trace.DrvReclaim], c.Seq, post)
			}
		}
	}

	// Tail writes, as multisets per direction and queue (on the queues the
	// driver's trace covers).
	for k, n := range driverTails {
		if m := qemuTails[k]; m != n {
			rep.fail(TailWritesMatch, "%s queue %d tail %d: the driver wrote it %d times, QEMU saw %d", trace.DirString(uint8(k[0])), k[1], k[2], n, m)
		}
	}
	for k, m := range qemuTails {
		if _, ok := driverTails[k]; !ok && tailDevs[[2]uint64{k[0], k[1]}] != nil {
			rep.fail(TailWritesMatch, "%s queue %d tail %d: QEMU saw it written %d times, the driver recorded no such write", trace.DirString(uint8(k[0])), k[1], k[2], m)
		}
	}
	return rep
}

// txMismatch compares a TX post with the descriptor QEMU fetched.
func txMismatch(p trace.Event, q Event) string {
	var bad []string
	if q.Lower&txdDEXT == 0 {
		bad = append(bad, fmt.Sprintf("DEXT clear (cmd_type_len %#x): not an advanced descriptor", q.Lower))
	}
	if p.Aux&trace.PostContext != 0 {
		if q.Lower&txdDTYPMask != txdDTYPCtx {
			bad = append(bad, fmt.Sprintf("the post is a context descriptor, QEMU read DTYP %#x", q.Lower&txdDTYPMask>>20))
		}
		return strings.Join(bad, "; ")
	}
	if q.Lower&txdDTYPMask != txdDTYPData {
		bad = append(bad, fmt.Sprintf("the post is a data descriptor, QEMU read DTYP %#x", q.Lower&txdDTYPMask>>20))
	}
	if q.Lower&txdLenMask != p.Len {
		bad = append(bad, fmt.Sprintf("DTALEN %d, the post's length %d", q.Lower&txdLenMask, p.Len))
	}
	if rs := q.Lower&txdRS != 0; rs != (p.Aux&trace.PostNoRS == 0) {
		bad = append(bad, fmt.Sprintf("RS %v, the post's RS %v", rs, p.Aux&trace.PostNoRS == 0))
	}
	return strings.Join(bad, "; ")
}

// tailRegister tells whether a BAR0 offset is an RX or TX tail register of
// the 82576 (datasheet 8.10/8.12: RDT(n) 0x0C018 + 0x40 n, TDT(n) 0x0E018 +
// 0x40 n; queues 0-3 also at the 82575-compatible 0x02818 + 0x100 n and
// 0x03818 + 0x100 n, which Linux's igb uses), and of which queue.
func tailRegister(off uint64) (dir uint8, queue uint16, ok bool) {
	switch {
	case off >= 0xC000 && off < 0xC000+0x40*16 && off%0x40 == 0x18:
		return trace.RX, uint16((off - 0xC000) / 0x40), true
	case off >= 0xE000 && off < 0xE000+0x40*16 && off%0x40 == 0x18:
		return trace.TX, uint16((off - 0xE000) / 0x40), true
	case off >= 0x2800 && off < 0x2800+0x100*4 && off%0x100 == 0x18:
		return trace.RX, uint16((off - 0x2800) / 0x100), true
	case off >= 0x3800 && off < 0x3800+0x100*4 && off%0x100 == 0x18:
		return trace.TX, uint16((off - 0x3800) / 0x100), true
	}
	return 0, 0, false
}

// nextPostOf is the first of rings whose next unfetched post holds buf, or nil.
func nextPostOf(rings []*ring, buf uint64) *ring {
	for _, r := range rings {
		if r.next < len(r.posts) && r.posts[r.next].Buf == buf {
			return r
		}
	}
	return nil
}

func lessKey(a, b models.RingKey) bool {
	if a.Dev != b.Dev {
		return a.Dev < b.Dev
	}
	if a.Dir != b.Dir {
		return a.Dir < b.Dir
	}
	return a.Queue < b.Queue
}

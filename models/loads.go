package models

import (
	"fmt"
	"strings"

	"github.com/verinic/verinic/trace"
)

// The checks of what the driver observed and posted (issue 11), over the
// schema-3 events of a trace (trace/SCHEMA.md): the driver's loads of
// descriptor words (drv_load), the device's stores into descriptors
// (dev_store), and the buffer grids of the header's pools. ValidateRings
// runs them with the ring replay and reports the earlier violation. Each
// check has a name, the first word of the violation's reason:
const (
	// LoadSeesStore: every value the driver loaded from a descriptor's
	// status or length word was stored there: by the driver's own post
	// (RX: dwords 2-3 are zero, the header-address quadword) or by one of
	// the device's dev_store events since that post, recorded before the
	// load. (Not "the last one": a store recorded before the load may land
	// after it, since the device records before its store and the driver
	// after its load; in a stepped run the two coincide.) Checked on
	// rings with device stores in the trace.
	CheckLoadSeesStore = "LoadSeesStore"
	// LengthAfterDD: an RX length (dword 3) the driver used was loaded
	// after the status load (dword 2) that saw DD (datasheet 7.1.6.2: DD
	// says the rest of the write-back is there); a length loaded before
	// is stale even when it happens to be right.
	CheckLengthAfterDD = "LengthAfterDD"
	// DDBeforeUse: the driver acts on a descriptor (RX dd_seen and hand-up,
	// TX dd_seen and reclaim) only after a load of its status that saw DD:
	// RX on the descriptor itself, TX on it or a later descriptor of the
	// same run (the device completes in order, 7.2.3.5). Checked when the
	// driver records its loads (any drv_load in the trace).
	CheckDDBeforeUse = "DDBeforeUse"
	// LengthHandedUp: the RX length the driver handed up (dd_seen and
	// reclaim len) is the low 16 bits of the length word it loaded, and the
	// length the device stored when the device stored it before DD.
	CheckLengthHandedUp = "LengthHandedUp"
	// BufferOnGrid: every buffer address posted lies on a pool's buffer
	// grid (header "pools"): RX at a buffer's data room (base + headroom),
	// TX anywhere in a buffer with the frame inside it. Checked when the
	// header lists pools.
	CheckBufferOnGrid = "BufferOnGrid"
	// DeviceOwnedOnce: a buffer is posted only while no ring of the same
	// device owns it. One set of device-owned buffers per device, across
	// all its rings: a post makes a buffer the device's; DD seen (RX) or
	// the reclaim (TX) gives it back. A buffer forwarded from an RX ring to
	// a TX ring is one object (on the pools' grid, a buffer is one object
	// whatever offset its frame starts at).
	CheckDeviceOwnedOnce = "DeviceOwnedOnce"
)

// ObservationChecks names the checks of CheckObservations a trace gives
// material for (for reports): the load checks need drv_load events, the
// grid check the header's pools; LoadSeesStore also dev_store events.
func ObservationChecks(h trace.Header, events []trace.Event) string {
	loads, stores := false, false
	for _, e := range events {
		loads = loads || e.Kind == trace.DrvLoad
		stores = stores || e.Kind == trace.DevStore
		if loads && stores {
			break
		}
	}
	var names []string
	if loads && stores {
		names = append(names, CheckLoadSeesStore)
	}
	if loads {
		names = append(names, CheckLengthAfterDD, CheckDDBeforeUse, CheckLengthHandedUp)
	}
	if len(h.Pools) > 0 {
		names = append(names, CheckBufferOnGrid)
	}
	names = append(names, CheckDeviceOwnedOnce)
	return strings.Join(names, ", ")
}

// descDD is the DD bit, bit 0 of the RX status word (dword 2, datasheet
// 7.1.6.2) and of the TX status word (dword 3, 7.2.3.2.4).
const descDD = 1

// obsDesc is what the checks know about one descriptor since its last post.
type obsDesc struct {
	posted   bool
	buf      uint64 // the owned buffer's key (0: none)
	postPos  int
	vals     [4]wordVals // values stored in each dword since the post (RX: 0 by the post)
	ddStored bool        // the device stored DD since the post
	devLen   uint32      // the device's length-word store, when made before DD
	hasLen   bool
	ddLoaded bool // a status load saw DD
	ddPos    int
	lenLoad  bool // the length word was loaded
	lenEarly bool // ... before the first status load that saw DD
	lenPos   int
	lenVal   uint32
	earlyPos int // the early load
	earlyVal uint32
	seenLen  uint32 // the RX length dd_seen reported
	seen     bool
}

// obsRing is one ring's state for the checks.
type obsRing struct {
	key    RingKey
	desc   []obsDesc
	stores bool // the trace holds device stores for this ring
	// TX: descriptors posted and not yet reclaimed, oldest first, and how
	// many of the oldest a DD load covers.
	inflight []uint32
	done     int
	// ctx is the ring's last contextEvents events, a circular buffer from
	// ctxNext (filled once nctx == contextEvents).
	ctx           [contextEvents]trace.Event
	ctxNext, nctx int
}

// context returns the ring's last events, oldest first.
func (r *obsRing) context() []trace.Event {
	out := make([]trace.Event, 0, r.nctx)
	for k := 0; k < r.nctx; k++ {
		out = append(out, r.ctx[(r.ctxNext-r.nctx+k+contextEvents)%contextEvents])
	}
	return out
}

// wordVals is the set of values stored in a descriptor word since its
// post: a device stores each word once per write-back, so a few slots do;
// past them any value is taken as possible (many).
type wordVals struct {
	v    [3]uint32
	n    uint8
	many bool
}

func (w *wordVals) add(v uint32) {
	if int(w.n) == len(w.v) {
		w.many = true
		return
	}
	w.v[w.n] = v
	w.n++
}

func (w *wordVals) has(v uint32) bool {
	for _, x := range w.v[:w.n] {
		if x == v {
			return true
		}
	}
	return w.many
}

func (w wordVals) String() string {
	s := fmt.Sprintf("%#x", w.v[:w.n])
	if w.many {
		s += " and more"
	}
	return s
}

// owner is where a device-owned buffer sits.
type owner struct {
	ring  RingKey
	index uint32
	pos   int
}

// obsChecker runs the checks over a trace.
type obsChecker struct {
	h      trace.Header
	rings  map[RingKey]*obsRing
	owned  map[uint16]map[uint64]owner // per device: buffer key -> where
	loads  bool                        // the driver records its loads
	events []trace.Event
}

// CheckObservations runs the named checks above over a trace and returns
// the first violation (nil when all hold). Rings missing from the header
// are skipped (ValidateRings reports them).
func CheckObservations(h trace.Header, events []trace.Event) *TraceViolation {
	c := &obsChecker{h: h, rings: map[RingKey]*obsRing{}, owned: map[uint16]map[uint64]owner{}, events: events}
	for _, e := range events {
		switch e.Kind {
		case trace.DrvLoad:
			c.loads = true
		case trace.DevStore:
			if r := c.ring(e); r != nil {
				r.stores = true
			}
		}
	}
	for pos, e := range events {
		if !isRingEvent(e.Kind) && e.Kind != trace.DrvLoad && e.Kind != trace.DevStore {
			continue
		}
		r := c.ring(e)
		if r == nil {
			continue
		}
		if reason := c.step(r, pos, e); reason != "" {
			return &TraceViolation{Ring: r.key, Pos: pos, Event: e, Reason: reason, Context: r.context(), State: c.state(r, e.Index)}
		}
		r.ctx[r.ctxNext] = e
		r.ctxNext = (r.ctxNext + 1) % contextEvents
		r.nctx = min(r.nctx+1, contextEvents)
	}
	return nil
}

func (c *obsChecker) ring(e trace.Event) *obsRing {
	k := RingKey{e.Dev, e.Dir, e.Queue}
	if r, ok := c.rings[k]; ok {
		return r
	}
	n, ok := c.h.RingSize(e.Dev, e.Dir, e.Queue)
	if !ok || n < 2 {
		c.rings[k] = nil
		return nil
	}
	r := &obsRing{key: k, desc: make([]obsDesc, n)}
	c.rings[k] = r
	return r
}

func (c *obsChecker) state(r *obsRing, i uint32) string {
	if int(i) >= len(r.desc) {
		return fmt.Sprintf("descriptor %d outside the ring", i)
	}
	d := &r.desc[i]
	var b strings.Builder
	fmt.Fprintf(&b, "descriptor %d: posted %v", i, d.posted)
	if d.posted {
		fmt.Fprintf(&b, " (event #%d)", d.postPos)
	}
	for w := 2; w < 4; w++ {
		fmt.Fprintf(&b, ", dword %d stored %v", w, d.vals[w])
	}
	fmt.Fprintf(&b, ", DD loaded %v", d.ddLoaded)
	if d.lenLoad {
		fmt.Fprintf(&b, ", length loaded %#x (event #%d)", d.lenVal, d.lenPos)
	}
	if r.key.Dir == trace.TX {
		fmt.Fprintf(&b, "; in flight %d, of which covered by a DD load %d", len(r.inflight), r.done)
	}
	return b.String()
}

// step applies one event; it returns a violation's reason or "".
func (c *obsChecker) step(r *obsRing, pos int, e trace.Event) string {
	if int(e.Index) >= len(r.desc) {
		return "" // tails, heads, or an index the ring replay reports
	}
	d := &r.desc[e.Index]
	rx := r.key.Dir == trace.RX
	switch e.Kind {
	case trace.DrvPost:
		return c.post(r, d, pos, e)
	case trace.DevStore:
		if e.Aux < 4 {
			d.vals[e.Aux].add(e.Len)
			statusWord := uint64(3)
			if rx {
				statusWord = 2
			}
			switch {
			case e.Aux == statusWord && e.Len&descDD != 0:
				d.ddStored = true
			case rx && e.Aux == 3 && !d.ddStored:
				d.devLen, d.hasLen = e.Len, true
			}
		}
	case trace.DrvLoad:
		return c.load(r, d, pos, e)
	case trace.DrvDDSeen:
		if rx {
			if reason := c.rxUse(d, e, "dd_seen"); reason != "" {
				return reason
			}
			d.seen, d.seenLen = true, e.Len
			c.release(r, d) // DD seen: the device is done with the buffer
			return ""
		}
		if c.loads && !d.ddLoaded {
			return fmt.Sprintf("%s: DD seen on TX descriptor %d without a load of its status that saw DD", CheckDDBeforeUse, e.Index)
		}
	case trace.DrvReclaim:
		if rx {
			if !d.seen {
				return c.rxUse(d, e, "hand-up")
			}
			if c.loads && e.Len != d.seenLen {
				return fmt.Sprintf("%s: descriptor %d handed up with length %d, but DD was seen with length %d", CheckLengthHandedUp, e.Index, e.Len, d.seenLen)
			}
			return ""
		}
		return c.txReclaim(r, d, e)
	}
	return ""
}

// post starts a descriptor's new life: grid and ownership checks.
func (c *obsChecker) post(r *obsRing, d *obsDesc, pos int, e trace.Event) string {
	c.release(r, d) // an overwritten slot's buffer (the ring replay judges the overwrite)
	*d = obsDesc{posted: true, postPos: pos}
	if r.key.Dir == trace.RX {
		// The read format's second quadword is the header address, 0
		// (ixgbe/rx.go post): dwords 2 and 3 read 0 until the write-back.
		d.vals[2].add(0)
		d.vals[3].add(0)
	} else {
		r.inflight = append(r.inflight, e.Index)
		if e.Aux&trace.PostContext != 0 {
			return "" // a context descriptor carries no buffer
		}
	}
	key, reason := c.onGrid(e)
	if reason != "" {
		return reason
	}
	own := c.owned[e.Dev]
	if own == nil {
		own = map[uint64]owner{}
		c.owned[e.Dev] = own
	}
	if o, ok := own[key]; ok {
		return fmt.Sprintf("%s: buffer %#x posted on %s descriptor %d while the device owns it on %s descriptor %d (posted at event #%d, not yet given back)",
			CheckDeviceOwnedOnce, e.Buf, r.key, e.Index, o.ring, o.index, o.pos)
	}
	own[key] = owner{ring: r.key, index: e.Index, pos: pos}
	d.buf = key
	return ""
}

// release gives descriptor d's buffer back to the driver.
func (c *obsChecker) release(r *obsRing, d *obsDesc) {
	if d.buf == 0 {
		return
	}
	if own := c.owned[r.key.Dev]; own != nil {
		if o, ok := own[d.buf]; ok && o.ring == r.key && o.pos == d.postPos {
			delete(own, d.buf)
		}
	}
	d.buf = 0
}

// onGrid places a posted address on the pools' grid and returns the
// buffer's key (the raw address when the header lists no pools).
func (c *obsChecker) onGrid(e trace.Event) (uint64, string) {
	if len(c.h.Pools) == 0 {
		return e.Buf | 1<<63, ""
	}
	// The device's own pools first, then any (a buffer forwarded between
	// devices that share an address space).
	for pass := 0; pass < 2; pass++ {
		for pi, p := range c.h.Pools {
			if (p.Dev == e.Dev) != (pass == 0) {
				continue
			}
			k, within, ok := gridBuffer(p, e.Buf)
			if !ok {
				continue
			}
			if e.Dir == trace.RX {
				if within != uint64(p.Headroom) {
					return 0, fmt.Sprintf("%s: RX buffer address %#x is %d bytes into buffer %d of pool %q, not at its data room (headroom %d)",
						CheckBufferOnGrid, e.Buf, within, k, p.Name, p.Headroom)
				}
			} else if e.Len == 0 || within+uint64(e.Len) > uint64(p.Headroom)+uint64(p.Size) {
				return 0, fmt.Sprintf("%s: TX frame at %#x, %d bytes, is %d bytes into buffer %d of pool %q and does not fit it (%d+%d bytes)",
					CheckBufferOnGrid, e.Buf, e.Len, within, k, p.Name, p.Headroom, p.Size)
			}
			return uint64(pi+1)<<32 | k, ""
		}
	}
	return 0, fmt.Sprintf("%s: address %#x is in no buffer of the trace's %d pools", CheckBufferOnGrid, e.Buf, len(c.h.Pools))
}

// gridBuffer returns which buffer of p holds addr and how far into it.
func gridBuffer(p trace.PoolInfo, addr uint64) (k, within uint64, ok bool) {
	base := uint64(p.Base)
	if addr < base || p.Stride == 0 {
		return 0, 0, false
	}
	off := addr - base
	if p.PerPage > 0 && p.Page > 0 {
		page, in := off/uint64(p.Page), off%uint64(p.Page)
		if in/uint64(p.Stride) >= uint64(p.PerPage) {
			return 0, 0, false // the tail of a page no buffer uses
		}
		k, within = page*uint64(p.PerPage)+in/uint64(p.Stride), in%uint64(p.Stride)
	} else {
		k, within = off/uint64(p.Stride), off%uint64(p.Stride)
	}
	return k, within, k < uint64(p.Count)
}

// load checks a driver load against the stores and notes what it saw.
func (c *obsChecker) load(r *obsRing, d *obsDesc, pos int, e trace.Event) string {
	w := e.Aux
	if w > 3 {
		return fmt.Sprintf("%s: load of dword %d of descriptor %d (a descriptor has 4)", CheckLoadSeesStore, w, e.Index)
	}
	if !d.posted {
		return "" // posted before the trace began
	}
	rx := r.key.Dir == trace.RX
	if r.stores && (rx && w >= 2 || !rx && w == 3) {
		found := d.vals[w].has(e.Len)
		// A TX post's status word holds no DD; any other value there
		// comes from the device.
		if !found && (rx || e.Len&descDD != 0) {
			return fmt.Sprintf("%s: the driver loaded %#x from dword %d of descriptor %d, a value nobody stored there since its post (stored: %v)",
				CheckLoadSeesStore, e.Len, w, e.Index, d.vals[w])
		}
	}
	switch {
	case rx && w == 2 && e.Len&descDD != 0:
		d.ddLoaded, d.ddPos = true, pos
	case rx && w == 3:
		// Once loaded before DD, always: a driver that retries the
		// descriptor later (a write-back seen unfinished) still read it
		// in the wrong order.
		if !d.ddLoaded && !d.lenEarly {
			d.lenEarly, d.earlyPos, d.earlyVal = true, pos, e.Len
		}
		d.lenLoad, d.lenPos, d.lenVal = true, pos, e.Len
	case !rx && w == 3 && e.Len&descDD != 0:
		d.ddLoaded, d.ddPos = true, pos
		// The device completes in order: every descriptor in flight up to
		// this one is done.
		for k, i := range r.inflight {
			if i == e.Index {
				r.done = max(r.done, k+1)
				break
			}
		}
	}
	return ""
}

// rxUse checks the loads behind an RX dd_seen or hand-up.
func (c *obsChecker) rxUse(d *obsDesc, e trace.Event, what string) string {
	if !c.loads || !d.posted {
		return ""
	}
	if !d.ddLoaded {
		return fmt.Sprintf("%s: %s of descriptor %d without a load of its status word that saw DD", CheckDDBeforeUse, what, e.Index)
	}
	if !d.lenLoad {
		return fmt.Sprintf("%s: %s of descriptor %d with length %d, but the driver loaded no length word after DD", CheckLengthAfterDD, what, e.Index, e.Len)
	}
	if d.lenEarly {
		return fmt.Sprintf("%s: the length word of descriptor %d was loaded (event #%d, value %#x) before the status load that saw DD (event #%d): a stale length",
			CheckLengthAfterDD, e.Index, d.earlyPos, d.earlyVal, d.ddPos)
	}
	if e.Len != d.lenVal&0xFFFF {
		return fmt.Sprintf("%s: %s of descriptor %d with length %d, but the driver loaded length %d (word %#x)", CheckLengthHandedUp, what, e.Index, e.Len, d.lenVal&0xFFFF, d.lenVal)
	}
	if d.hasLen && e.Len != d.devLen&0xFFFF {
		return fmt.Sprintf("%s: %s of descriptor %d with length %d, but the device stored length %d", CheckLengthHandedUp, what, e.Index, e.Len, d.devLen&0xFFFF)
	}
	return ""
}

// txReclaim checks that a TX reclaim is covered by a DD load and gives the
// buffer back.
func (c *obsChecker) txReclaim(r *obsRing, d *obsDesc, e trace.Event) string {
	// Context descriptors ahead of it leave with it.
	k := 0
	for k < len(r.inflight) && r.inflight[k] != e.Index {
		k++
	}
	if k == len(r.inflight) {
		c.release(r, d)
		return "" // not in flight here: the ring replay reports it
	}
	if c.loads && r.done <= k {
		return fmt.Sprintf("%s: TX descriptor %d reclaimed, but no load that saw DD covers it (%d of %d descriptors in flight covered)",
			CheckDDBeforeUse, e.Index, r.done, len(r.inflight))
	}
	r.inflight = r.inflight[k+1:]
	r.done = max(r.done-(k+1), 0)
	c.release(r, d)
	return ""
}

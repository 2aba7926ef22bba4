package models

import (
	"fmt"
	"strings"

	"github.com/verinic/verinic/trace"
)

// Device truth (trace schema version 3): the driver's events say what it
// meant to do; the device model's dev_tail_write, dev_desc_at_tail,
// dev_store and dev_violation events say what was in memory when it looked
// (trace/SCHEMA.md). CheckDeviceTruth holds the two against each other:
//
//   - DescriptorMatchesPost: every descriptor handed over at a doorbell
//     holds what the driver's latest post to that index claimed: the
//     buffer address in the first quadword; for a TX data descriptor the
//     length in DTALEN (bits 15:0 of the second quadword's low dword), RS
//     (bit 27) as the post's PostNoRS flag says and no DD left in the
//     status (datasheet 7.2.3.2.4); for a TX context descriptor (post flag
//     PostContext, 7.2.3.2.3) the first quadword; for an RX descriptor no
//     DD bit left from an old write-back (7.1.6.1: the driver's post
//     writes header address 0, whose bit 0 is where the device writes DD).
//   - HandedOverOnlyPosted: a descriptor handed over was posted by the
//     driver since the driver last reclaimed it (writing the tail before
//     the descriptor stores breaks this, whatever is in memory).
//   - NoDeviceViolation: the device found no ring or IOMMU rule broken
//     (each dev_violation names its rule).
//
// A trace without device-truth events (schema 1 and 2, or recorded
// against real hardware) has nothing to check; the report says so.

// Check names, as verify prints them.
const (
	CheckDescriptorMatchesPost = "DescriptorMatchesPost"
	CheckHandedOverOnlyPosted  = "HandedOverOnlyPosted"
	CheckNoDeviceViolation     = "NoDeviceViolation"
)

// Descriptor bits the comparison needs (datasheet 7.2.3.2.4; the same
// values as ixgbe/regs, which models does not import).
const (
	txdLenMask       = 0xFFFF  // DTALEN, cmd_type_len bits 15:0
	txdRS            = 1 << 27 // DCMD.RS
	txdDD            = 1 << 32 // STA.DD: bit 0 of the second quadword's high dword
	rxdDD            = 1       // DD: bit 0 of the RX write-back's status dword (dword 2)
	maxTruthFailures = 5       // failures of each check kept in a report; all are counted
)

// TruthFailure is one event that breaks a device-truth check.
type TruthFailure struct {
	Check  string // CheckDescriptorMatchesPost, ...
	Ring   RingKey
	Pos    int // position of the event in the trace
	Event  trace.Event
	Detail string
}

func (f TruthFailure) String() string {
	return fmt.Sprintf("%s: %s descriptor %d (event #%d, seq %d): %s", f.Check, f.Ring, f.Event.Index, f.Pos, f.Event.Seq, f.Detail)
}

// TruthReport is the outcome of CheckDeviceTruth.
type TruthReport struct {
	Doorbells   int // dev_tail_write events
	Descriptors int // dev_desc_at_tail events checked
	Stores      int // dev_store events
	DeviceViol  int // dev_violation events
	FailCount   int // all failures
	// ByCheck counts the failures of each check, ByRule the device's
	// violations by the rule they broke (the name its detail starts with).
	ByCheck, ByRule map[string]int
	// Failures holds, in trace order, the first failures of each check
	// (maxTruthFailures) and the first violation of each device rule.
	Failures []TruthFailure
}

// Recorded reports whether the trace holds any device-truth event.
func (r *TruthReport) Recorded() bool {
	return r.Doorbells+r.Descriptors+r.Stores+r.DeviceViol > 0
}

// OK reports whether every check held.
func (r *TruthReport) OK() bool { return r.FailCount == 0 }

// truthRing is one ring's view: the driver's latest post per index and
// whether it was posted since it was last reclaimed.
type truthRing struct {
	size   uint32
	post   []trace.Event
	posted []bool
}

// CheckDeviceTruth checks the trace's device-truth events against the
// driver's posts (see the checks above). Rings missing from the header are
// skipped for the comparison (ValidateRings reports them); dev_violation
// events fail wherever they are.
func CheckDeviceTruth(h trace.Header, events []trace.Event) *TruthReport {
	rep := &TruthReport{ByCheck: map[string]int{}, ByRule: map[string]int{}}
	rings := map[RingKey]*truthRing{}
	ringOf := func(e trace.Event) *truthRing {
		k := RingKey{e.Dev, e.Dir, e.Queue}
		r, ok := rings[k]
		if !ok {
			if size, found := h.RingSize(k.Dev, k.Dir, k.Queue); found && size > 0 {
				r = &truthRing{size: size, post: make([]trace.Event, size), posted: make([]bool, size)}
			}
			rings[k] = r
		}
		return r
	}
	fail := func(check string, pos int, e trace.Event, rule string, format string, args ...any) {
		rep.FailCount++
		rep.ByCheck[check]++
		keep := rep.ByCheck[check] <= maxTruthFailures
		if rule != "" {
			rep.ByRule[rule]++
			keep = keep || rep.ByRule[rule] == 1
		}
		if keep {
			rep.Failures = append(rep.Failures, TruthFailure{Check: check, Ring: RingKey{e.Dev, e.Dir, e.Queue},
				Pos: pos, Event: e, Detail: fmt.Sprintf(format, args...)})
		}
	}
	for pos, e := range events {
		switch e.Kind {
		case trace.DrvPost, trace.DrvReclaim, trace.DevDescAtTail:
		case trace.DevTailWrite:
			rep.Doorbells++
			continue
		case trace.DevStore:
			rep.Stores++
			continue
		case trace.DevViolation:
			rep.DeviceViol++
			detail := e.Data
			if detail == "" {
				detail = fmt.Sprintf("rule %d", e.Aux)
			}
			rule, _, _ := strings.Cut(detail, ":")
			fail(CheckNoDeviceViolation, pos, e, rule, "the device reports %s (buffer %#x)", detail, e.Buf)
			continue
		default:
			continue
		}
		r := ringOf(e)
		if r == nil {
			continue
		}
		if e.Kind == trace.DevDescAtTail {
			rep.Descriptors++
		}
		if e.Index >= r.size {
			if e.Kind == trace.DevDescAtTail {
				fail(CheckHandedOverOnlyPosted, pos, e, "", "descriptor %d handed over is outside the ring of %d", e.Index, r.size)
			}
			continue // the ring replay reports the driver's
		}
		switch e.Kind {
		case trace.DrvPost:
			r.post[e.Index], r.posted[e.Index] = e, true
		case trace.DrvReclaim:
			r.posted[e.Index] = false
		case trace.DevDescAtTail:
			if !r.posted[e.Index] {
				fail(CheckHandedOverOnlyPosted, pos, e, "", "handed over at the doorbell holding %#016x %#016x, but the driver has not posted it since it last reclaimed it (was the tail written before the descriptor?)",
					e.Buf, e.Aux)
				continue
			}
			if why := descMismatch(e, r.post[e.Index]); why != "" {
				fail(CheckDescriptorMatchesPost, pos, e, "", "%s (at the doorbell %#016x %#016x; posted at seq %d)", why, e.Buf, e.Aux, r.post[e.Index].Seq)
			}
		}
	}
	return rep
}

// descMismatch compares descriptor e (dev_desc_at_tail) with the post p
// the driver made to it and says what differs ("" if nothing).
func descMismatch(e, p trace.Event) string {
	var why []string
	if e.Buf != p.Buf {
		what := "buffer address"
		if e.Dir == trace.TX && p.Aux&trace.PostContext != 0 {
			what = "context descriptor's first quadword"
		}
		why = append(why, fmt.Sprintf("%s %#x, the post said %#x", what, e.Buf, p.Buf))
	}
	switch {
	case e.Dir == trace.RX:
		if e.Aux&rxdDD != 0 {
			why = append(why, "DD still set from an old write-back")
		}
	case p.Aux&trace.PostContext != 0:
	default:
		if l := uint32(e.Aux) & txdLenMask; l != p.Len {
			why = append(why, fmt.Sprintf("length %d, the post said %d", l, p.Len))
		}
		if rs, want := e.Aux&txdRS != 0, p.Aux&trace.PostNoRS == 0; rs != want {
			why = append(why, fmt.Sprintf("RS %v, the post said %v", rs, want))
		}
		if e.Aux&txdDD != 0 {
			why = append(why, "DD still set from an old write-back")
		}
	}
	return strings.Join(why, "; ")
}

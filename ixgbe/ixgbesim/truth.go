package ixgbesim

import "github.com/verinic/verinic/trace"

// Device truth (trace schema version 3, trace/SCHEMA.md "Device truth and
// driver loads"): what the device saw and did in memory, recorded by the
// device model at the moment it happens, so that a checker compares the
// driver's claims (post, tail) with what was really there:
//
//   - dev_tail_write: in the register-write path of RDT/TDT, synchronously
//     in the driver's Write32, before any engine runs (the doorbell,
//     datasheet 7.1.9 and 7.2.3);
//   - dev_desc_at_tail: right after it, one per descriptor the write hands
//     over (old tail to new tail), with both quadwords as they are in
//     memory at that moment (the ownership checker's snapshot);
//   - dev_store: before each 32-bit store the device makes into a
//     descriptor (write-back words, 7.1.6.2 and 7.2.3.2.4), in order;
//   - dev_violation: every ownership violation and IOMMU fault, with the
//     descriptor, the buffer, the rule's code and a text naming the rule.
//
// Every recording function here is called behind an n.tr != nil check at
// its call site (or makes it first), so a NIC without a recorder pays one
// predictable branch per site and no call.

// traceTailWrite records a tail register write of v (RDT or TDT of the
// queue), as the register file receives it.
func (q *queueBase) traceTailWrite(v uint32) {
	q.n.tr.Record(trace.Event{Kind: trace.DevTailWrite, Dir: q.dir, Dev: q.n.dev, Queue: uint16(q.idx), Index: v})
}

// traceDescAtTail records descriptor i as it was in memory when a tail
// write handed it over (s: the snapshot of its 16 bytes).
func (c *ownerCheck) traceDescAtTail(i uint32, s []byte) {
	c.n.tr.Record(trace.Event{Kind: trace.DevDescAtTail, Dir: c.dir, Dev: c.n.dev, Queue: uint16(c.q), Index: i,
		Buf: le64(s[0:]), Aux: le64(s[8:])})
}

// traceStore records that the device is about to store v into dword off/4
// of descriptor i.
func (n *NIC) traceStore(dir uint8, q int, i uint32, off int, v uint32) {
	n.tr.Record(trace.Event{Kind: trace.DevStore, Dir: dir, Dev: n.dev, Queue: uint16(q), Index: i,
		Aux: uint64(off / 4), Len: v})
}

// traceViolation records v as a dev_violation event: index, buffer, rule
// code and the rule's name with the details.
func (n *NIC) traceViolation(v *Violation) {
	if n.tr == nil {
		return
	}
	n.tr.Record(trace.Event{Kind: trace.DevViolation, Dir: v.Dir, Dev: n.dev, Queue: uint16(v.Queue), Index: v.Index,
		Buf: v.Buf, Aux: uint64(v.Kind), Data: v.Kind.String() + ": " + v.Detail})
}

// iommuFault records, with a recorder, the IOMMU's refusal of an access at
// iova by queue q's engine while it worked on descriptor i (the fault
// itself is in the domain, Domain.access); Buf is the refused IOVA.
func (n *NIC) iommuFault(dir uint8, q int, i uint32, iova uint64, what string) {
	if n.tr == nil {
		return
	}
	v := Violation{Kind: IOMMUFault, Dir: dir, Queue: q, Index: i, Buf: iova,
		Detail: "DMA to or from IOVA outside the IOMMU mappings (" + what + "); the queue stops"}
	n.traceViolation(&v)
}

// Package qemutrace reads what QEMU's igb model (hw/net/igb_core.c, QEMU
// 8.0 and later) reports through its trace events and holds it against a
// driver's ring trace (trace/SCHEMA.md): the device's own account of the
// descriptors it fetched and the buffers it wrote, from a device model
// nobody here wrote (issue 15, device truth from QEMU).
//
// QEMU's igb reuses e1000e's trace events for its rings. Recorded with
// `-trace` (guest.Config.QEMUTrace), the log backend writes one line per
// event, "name message", optionally after a "pid@seconds.micros:" prefix:
//
//	e1000e_core_write Write to register 0xe018, 4 byte(s), value: 0x5
//	e1000e_tx_descr 0xffefe042 : 2b30003c f0000
//	e1000e_rx_descr Next RX descriptor: ring #0, PA: 0xffffe010, length: 16
//	igb_rx_desc_buff_write buffer 1, addr: 0xffffc0c0, offset: 14, from: 0x562c..., length: 20
//	e1000e_rx_written_to_guest Received packet written to guest (queue 0)
//
// What the events carry, and what they lack for the schema's device-truth
// events, is in docs/NOTES.md ("QEMU igb trace events as device truth").
package qemutrace

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Kind is the kind of a QEMU event this package reads.
type Kind int

const (
	// RegWrite: e1000e_core_write, a register write: Addr is the register
	// offset in BAR0, Val the value.
	RegWrite Kind = iota + 1
	// TxDescr: e1000e_tx_descr, a TX descriptor as the device fetched it:
	// Buf its first quadword (the buffer address of a data descriptor),
	// Lower the second quadword's low dword (cmd_type_len), Upper its high
	// dword (olinfo_status). No queue, no index, no device.
	TxDescr
	// RxDescr: e1000e_rx_descr, the device fetched the RX descriptor at
	// address Addr (an IOVA) of queue Ring, Len bytes long. Its contents are
	// not printed.
	RxDescr
	// RxBufWrite: igb_rx_desc_buff_write, the device wrote Len bytes of a
	// frame at offset Off into the buffer at Buf (the descriptor's buffer
	// address); Ring is the buffer's number within the descriptor (1: the
	// packet buffer, 0: the header buffer of split descriptors).
	RxBufWrite
	// RxWritten: e1000e_rx_written_to_guest, a frame is done on queue Ring.
	RxWritten
)

func (k Kind) String() string {
	switch k {
	case RegWrite:
		return "e1000e_core_write"
	case TxDescr:
		return "e1000e_tx_descr"
	case RxDescr:
		return "e1000e_rx_descr"
	case RxBufWrite:
		return "igb_rx_desc_buff_write"
	case RxWritten:
		return "e1000e_rx_written_to_guest"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Events are the QEMU trace events the checks need: QEMU's
// `-trace events=FILE` lists these names (guest.Config.QEMUTrace takes them).
var Events = []string{"e1000e_core_write", "e1000e_tx_descr", "e1000e_rx_descr", "igb_rx_desc_buff_write", "e1000e_rx_written_to_guest"}

// Event is one QEMU trace line.
type Event struct {
	Kind         Kind
	Line         int // line number in the log, from 1
	Ring         int
	Addr, Buf    uint64
	Val          uint64
	Lower, Upper uint32
	Off, Len     uint32
}

// Parse reads a QEMU trace log. Lines of other events are skipped (counted
// in skipped); a line of a known event that does not parse is an error
// naming it, since a QEMU whose messages changed must not pass unchecked.
func Parse(r io.Reader) (evs []Event, skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		// Optional "pid@sec.usec:" prefix.
		if at := strings.IndexByte(line, '@'); at > 0 && at < 12 {
			if c := strings.IndexByte(line, ':'); c > at && !strings.ContainsAny(line[:c], " ") {
				line = line[c+1:]
			}
		}
		name, msg, _ := strings.Cut(line, " ")
		e := Event{Line: n}
		var ok bool
		switch name {
		case "e1000e_core_write":
			e.Kind = RegWrite
			// "Write to register 0x%lx, %d byte(s), value: 0x%lx"
			var size int
			ok = scan(msg, "Write to register 0x%x, %d byte(s), value: 0x%x", &e.Addr, &size, &e.Val)
		case "e1000e_tx_descr":
			e.Kind = TxDescr
			// "%p : %x %x"; %p prints (nil) for 0.
			f := strings.Fields(msg)
			if ok = len(f) == 4 && f[1] == ":"; ok {
				var lo, hi uint64
				e.Buf, ok = parsePtr(f[0])
				lo, err1 := strconv.ParseUint(f[2], 16, 32)
				hi, err2 := strconv.ParseUint(f[3], 16, 32)
				ok = ok && err1 == nil && err2 == nil
				e.Lower, e.Upper = uint32(lo), uint32(hi)
			}
		case "e1000e_rx_descr":
			e.Kind = RxDescr
			ok = scan(msg, "Next RX descriptor: ring #%d, PA: 0x%x, length: %d", &e.Ring, &e.Addr, &e.Len)
		case "igb_rx_desc_buff_write":
			e.Kind = RxBufWrite
			// "buffer %u, addr: 0x%lx, offset: %u, from: %p, length: %u"
			var from string
			ok = scan(msg, "buffer %d, addr: 0x%x, offset: %d, from: %s length: %d", &e.Ring, &e.Buf, &e.Off, &from, &e.Len)
		case "e1000e_rx_written_to_guest":
			e.Kind = RxWritten
			ok = scan(msg, "Received packet written to guest (queue %d)", &e.Ring)
		default:
			skipped++
			continue
		}
		if !ok {
			return evs, skipped, fmt.Errorf("qemutrace: line %d: cannot read %s %q (has QEMU's message changed?)", n, name, msg)
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		return evs, skipped, fmt.Errorf("qemutrace: %w", err)
	}
	return evs, skipped, nil
}

// scan is fmt.Sscanf that reports whether every verb was filled.
func scan(s, format string, args ...any) bool {
	n, err := fmt.Sscanf(s, format, args...)
	return err == nil && n == len(args)
}

func parsePtr(s string) (uint64, bool) {
	if s == "(nil)" {
		return 0, true
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	return v, err == nil
}

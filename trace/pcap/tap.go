package pcap

import "time"

// Link is a simulated NIC's wire (ixgbesim.Link): frames include the 4-byte
// FCS, and Transmit does not keep the slice.
type Link interface {
	Transmit(frame []byte)
	Up() bool
}

// Receiver takes frames from a wire, FCS included ((*ixgbesim.NIC).Receive).
type Receiver interface {
	Receive(frame []byte) bool
}

// fcsLen is the Ethernet frame check sequence's length. pcap's Ethernet
// link type carries frames without it, so taps strip it before recording.
const fcsLen = 4

// TapOptions configure a tap. Zero values take defaults.
type TapOptions struct {
	// KeepFCS records frames with their FCS. By default it is stripped:
	// LINKTYPE_ETHERNET frames do not carry one, and Wireshark would
	// otherwise show it as trailer bytes.
	KeepFCS bool
	// Now returns the timestamp of a frame (time.Now by default; a
	// simulator's virtual clock in stepped tests).
	Now func() time.Time
}

func (o *TapOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *TapOptions) record(w *Writer, frame []byte) {
	f := frame
	if !o.KeepFCS && len(f) >= fcsLen {
		f = f[:len(f)-fcsLen]
	}
	// A failed write is kept in the Writer (see Err); the wire carries on,
	// as a capture must never disturb the traffic it watches.
	_ = w.WriteFrame(o.now(), f)
}

// tapLink records what a NIC transmits, then passes it on.
type tapLink struct {
	inner Link
	w     *Writer
	o     TapOptions
}

// Tap returns a Link that records every frame transmitted through it to w
// and then hands it to inner. Attach it to a simulated NIC in place of
// inner to capture what the NIC sends.
func Tap(inner Link, w *Writer, o TapOptions) Link {
	return &tapLink{inner: inner, w: w, o: o}
}

func (t *tapLink) Transmit(frame []byte) {
	t.o.record(t.w, frame)
	t.inner.Transmit(frame)
}

func (t *tapLink) Up() bool { return t.inner.Up() }

// tapReceiver records what reaches a receiver, then passes it on.
type tapReceiver struct {
	inner Receiver
	w     *Writer
	o     TapOptions
}

// TapReceiver returns a Receiver that records every frame delivered to it
// and then hands it to inner: give it to a host link (hostlink.OpenTAP) in
// place of the NIC to capture what the NIC receives.
func TapReceiver(inner Receiver, w *Writer, o TapOptions) Receiver {
	return &tapReceiver{inner: inner, w: w, o: o}
}

func (t *tapReceiver) Receive(frame []byte) bool {
	t.o.record(t.w, frame)
	return t.inner.Receive(frame)
}

// wireEnd is one side of a Wire: what its NIC transmits reaches the peer.
type wireEnd struct {
	peer Receiver
	w    *Writer
	o    *TapOptions
}

func (e *wireEnd) Transmit(frame []byte) {
	e.o.record(e.w, frame)
	e.peer.Receive(frame)
}

func (e *wireEnd) Up() bool { return true }

// Wire joins two simulated NICs back to back and records every frame on it,
// both directions, to w: the capture core of `nicctl capture` on a simulated
// pair. Attach linkA to NIC a and linkB to NIC b. Frames are delivered
// synchronously, in order, without loss (ixgbesim.Connect is the wire with
// fault injection).
func Wire(w *Writer, a, b Receiver, o TapOptions) (linkA, linkB Link) {
	opts := o
	return &wireEnd{peer: b, w: w, o: &opts}, &wireEnd{peer: a, w: w, o: &opts}
}

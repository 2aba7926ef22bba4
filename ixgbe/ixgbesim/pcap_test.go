package ixgbesim

import (
	"bytes"
	"testing"

	"github.com/verinic/verinic/trace/pcap"
)

// TestPcapCaptureAndReplay: frames one NIC transmits, captured to pcap
// through a trace/pcap tap, replayed into another NIC, arrive there
// unchanged.
func TestPcapCaptureAndReplay(t *testing.T) {
	a, da, _ := soloNIC(t, "pa", 1)
	var file bytes.Buffer
	w, err := pcap.NewWriter(&file, pcap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a.Attach(pcap.Tap(nowhere{}, w, pcap.TapOptions{Now: a.Clock().Now}))
	b, db, _ := soloNIC(t, "pb", 1)
	var sent [][]byte
	for i := 0; i < 20; i++ {
		f := testFrame(b.MAC(), a.MAC(), 60+17*i, uint32(i))
		sent = append(sent, f)
		da.send(0, f)
		a.Drain(0)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if k, _ := w.Stats(); k != 20 {
		t.Fatalf("captured %d frames", k)
	}
	offered, accepted, err := ReplayPcap(bytes.NewReader(file.Bytes()), b)
	if err != nil || offered != 20 || accepted != 20 {
		t.Fatalf("replay: offered %d, accepted %d, %v", offered, accepted, err)
	}
	b.Drain(0)
	got := db.recv(0)
	if len(got) != 20 {
		t.Fatalf("received %d frames", len(got))
	}
	for i := range got {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if _, _, err := ReplayPcap(bytes.NewReader([]byte("not a pcap")), b); err == nil {
		t.Fatal("replay of garbage succeeded")
	}
}

// nowhere is a wire with nothing at the other end (link up).
type nowhere struct{}

func (nowhere) Transmit([]byte) {}
func (nowhere) Up() bool        { return true }

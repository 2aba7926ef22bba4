package ixgbesim

import (
	"bytes"
	"testing"
)

// TestPcapCaptureAndReplay: frames one NIC transmits, captured to pcap,
// replayed into another NIC, arrive there unchanged.
func TestPcapCaptureAndReplay(t *testing.T) {
	a, da, _ := soloNIC(t, "pa", 1)
	var file bytes.Buffer
	capt, err := NewPcapCapture(&file, nil, a.Clock())
	if err != nil {
		t.Fatal(err)
	}
	a.Attach(capt)
	b, db, _ := soloNIC(t, "pb", 1)
	var sent [][]byte
	for i := 0; i < 20; i++ {
		f := testFrame(b.MAC(), a.MAC(), 60+17*i, uint32(i))
		sent = append(sent, f)
		da.send(0, f)
		a.Drain(0)
	}
	if k, err := capt.Frames(); k != 20 || err != nil {
		t.Fatalf("captured %d frames, %v", k, err)
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

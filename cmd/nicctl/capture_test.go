package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/verinic/verinic/internal/pktgen"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/trace/pcap"
)

// TestCaptureSimPair captures generated traffic between two simulated NICs
// and reads the file back: every frame the generator sent is in it, intact
// (FCS stripped) and with valid checksums; with tshark installed, tshark
// agrees.
func TestCaptureSimPair(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cap.pcap")
	var out bytes.Buffer
	res, err := captureSimPair(captureOptions{file: path, frames: 300, check: true, timeout: 30e9}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.sent != 300 || res.received != 300 || res.captured != 300 {
		t.Fatalf("result %+v\n%s", res, out.String())
	}
	if res.tshark != nil && (res.tshark.Frames != 300 || res.tshark.Malformed != 0 || res.tshark.BadChecksums != 0 || res.tshark.ExpertErrors != 0) {
		t.Fatalf("tshark: %+v", *res.tshark)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := pktgen.NewTracker()
	for {
		fr, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var d header.Frame
		if err := header.DecodeFrame(fr.Data, &d); err != nil || d.UDP() == nil || fr.OrigLen != len(fr.Data) {
			t.Fatalf("captured frame does not decode as UDP (%v): % x", err, fr.Data)
		}
		tr.Observe(fr.Data)
	}
	if tr.InOrder != 300 || tr.Received != 300 {
		t.Fatalf("capture holds %d in-order generated frames of 300: %v", tr.InOrder, tr.FirstError)
	}
}

func TestCaptureUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-w"}, {"-w", "x.pcap", "--size", "20"}, {"-w", "x.pcap", "extra"}} {
		if err := runCapture(args); err == nil {
			t.Errorf("runCapture(%q) accepted", args)
		}
	}
}

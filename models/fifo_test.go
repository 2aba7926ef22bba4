package models

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/verinic/verinic/trace"
)

func appTx(seq *uint64, tags ...uint64) []trace.Event {
	var out []trace.Event
	add := func(e trace.Event) { e.Seq = *seq; *seq++; out = append(out, e) }
	add(trace.Event{Kind: trace.AppCallTx, Dir: trace.TX})
	for _, t := range tags {
		add(trace.Event{Kind: trace.AppPacket, Dir: trace.TX, Buf: t})
	}
	add(trace.Event{Kind: trace.AppRetTx, Dir: trace.TX, Len: uint32(len(tags))})
	return out
}

func appRx(seq *uint64, tags ...uint64) []trace.Event {
	var out []trace.Event
	add := func(e trace.Event) { e.Seq = *seq; *seq++; out = append(out, e) }
	add(trace.Event{Kind: trace.AppCallRx, Dev: 1})
	for _, t := range tags {
		add(trace.Event{Kind: trace.AppPacket, Dev: 1, Buf: t})
	}
	add(trace.Event{Kind: trace.AppRetRx, Dev: 1, Len: uint32(len(tags))})
	return out
}

// The wire model is a lossy FIFO: loss is fine, duplication, reordering
// and frames never sent are not; failures are visualized.
func TestWireFIFOModel(t *testing.T) {
	cases := []struct {
		name string
		rx   [][]uint64
		ok   bool
	}{
		{"in order", [][]uint64{{1, 2}, {3, 4, 5}}, true},
		{"loss", [][]uint64{{1}, {4}}, true},
		{"duplicate", [][]uint64{{1, 2}, {2, 3}}, false},
		{"reorder", [][]uint64{{2, 1}}, false},
		{"never sent", [][]uint64{{1, 9}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var seq uint64
			evs := appTx(&seq, 1, 2, 3)
			evs = append(evs, appTx(&seq, 4, 5)...)
			for _, r := range c.rx {
				evs = append(evs, appRx(&seq, r...)...)
			}
			dir := t.TempDir()
			fr, err := CheckWireFIFO(evs, FIFOOptions{VisualizeDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if (fr.Result == porcupine.Ok) != c.ok {
				t.Fatalf("result %v, want ok=%v", fr.Result, c.ok)
			}
			if !c.ok {
				if fr.HTML == "" {
					t.Fatal("no visualization")
				}
				b, err := os.ReadFile(fr.HTML)
				if err != nil || !strings.Contains(string(b), "<html") || filepath.Dir(fr.HTML) != dir {
					t.Fatalf("visualization %s: %v", fr.HTML, err)
				}
			}
		})
	}
}

// Long single-queue histories are cut into histories of at most
// SegmentOps operations, and the verdict does not change.
func TestFIFOSegmentation(t *testing.T) {
	var seq uint64
	var evs []trace.Event
	tag := uint64(0)
	for i := 0; i < 3000; i++ {
		evs = append(evs, appTx(&seq, tag, tag+1)...)
		evs = append(evs, appRx(&seq, tag, tag+1)...)
		tag += 2
	}
	fr, err := CheckWireFIFO(evs, FIFOOptions{SegmentOps: 500})
	if err != nil || fr.Result != porcupine.Ok {
		t.Fatalf("%v %+v", err, fr)
	}
	if fr.Segments != 12 || fr.LargestSeg > 500 {
		t.Fatalf("%d segments, largest %d", fr.Segments, fr.LargestSeg)
	}
	// A duplicate late in the history is still found.
	evs = append(evs, appRx(&seq, 5)...)
	fr, _ = CheckWireFIFO(evs, FIFOOptions{SegmentOps: 500})
	if fr.Result != porcupine.Illegal {
		t.Fatalf("late duplicate: %v", fr.Result)
	}
	// Unbalanced application events are an error, not a verdict.
	if _, err := CheckWireFIFO([]trace.Event{{Kind: trace.AppRetTx}}, FIFOOptions{}); err == nil {
		t.Fatal("return without call accepted")
	}
}

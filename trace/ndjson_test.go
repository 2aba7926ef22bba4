package trace

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// Property: writing any events and reading them back yields the same events
// and header.
func TestNDJSONRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 50).Draw(t, "n")
		evs := make([]Event, n)
		for i := range evs {
			evs[i] = Event{
				Seq:   uint64(i),
				T:     rapid.Int64Min(0).Draw(t, "t"),
				Kind:  Kind(rapid.IntRange(1, int(kindCount)-1).Draw(t, "kind")),
				Dir:   uint8(rapid.IntRange(0, 1).Draw(t, "dir")),
				Dev:   rapid.Uint16().Draw(t, "dev"),
				Queue: rapid.Uint16().Draw(t, "q"),
				Index: rapid.Uint32().Draw(t, "idx"),
				Len:   rapid.Uint32().Draw(t, "len"),
				Buf:   rapid.Uint64().Draw(t, "buf"),
			}
		}
		h := Header{Devices: []DeviceInfo{{Dev: 1, Name: "sim1", Queues: []QueueInfo{{Dir: "tx", Queue: 0, Ring: 8}}}}, Note: "x"}
		var b bytes.Buffer
		if err := WriteEvents(&b, h, evs); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(&b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(evs) {
			t.Fatalf("read %d events, wrote %d", len(got), len(evs))
		}
		for i := range got {
			if got[i] != evs[i] {
				t.Fatalf("event %d: got %+v want %+v", i, got[i], evs[i])
			}
		}
		hh := r.Header()
		if hh.Version != SchemaVersion || hh.Schema != SchemaName || hh.Events != uint64(n) || hh.Clock != ClockMonotonicNS {
			t.Fatalf("header %+v", hh)
		}
		if sz, ok := hh.RingSize(1, TX, 0); !ok || sz != 8 {
			t.Fatalf("RingSize = %d,%v", sz, ok)
		}
	})
}

func TestReaderRejectsBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "",
		"not json":    "hello\n",
		"wrong name":  `{"schema":"other","version":1}` + "\n",
		"new version": `{"schema":"verinic-trace","version":99}` + "\n",
	} {
		if _, err := NewReader(strings.NewReader(in)); !errors.Is(err, ErrSchema) {
			t.Errorf("%s: err = %v, want ErrSchema", name, err)
		}
	}
	hdr := `{"schema":"verinic-trace","version":1}` + "\n"
	for name, line := range map[string]string{
		"bad kind": `{"seq":0,"kind":"bogus","dir":"tx"}`,
		"bad dir":  `{"seq":0,"kind":"post","dir":"up"}`,
		"no seq":   `{"kind":"post","dir":"tx"}`,
		"bad buf":  `{"seq":0,"kind":"post","dir":"tx","buf":"0xzz"}`,
		"garbage":  `{"seq":`,
	} {
		r, err := NewReader(strings.NewReader(hdr + line + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWriteFileFromRecorder(t *testing.T) {
	r := NewRecorder(4)
	for i := 0; i < 6; i++ {
		r.Record(Event{Kind: DrvPost, Dir: TX, Index: uint32(i), Buf: 0x1000 * uint64(i)})
	}
	p := filepath.Join(t.TempDir(), "t.ndjson")
	if err := WriteFile(p, Header{}, r); err != nil {
		t.Fatal(err)
	}
	h, evs, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 || h.Dropped != 2 || h.Events != 4 {
		t.Fatalf("events %d, header %+v", len(evs), h)
	}
	for i, e := range evs {
		if e.Seq != uint64(i) || e.Index != uint32(i) || e.Buf != 0x1000*uint64(i) {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
	if err := WriteFile(p, Header{}, nil); err == nil {
		t.Fatal("nil recorder accepted")
	}
}

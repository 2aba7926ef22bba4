package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
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
			evs[i] = drawEvent(t, Kind(rapid.IntRange(1, int(kindCount)-1).Draw(t, "kind")))
			evs[i].Seq = uint64(i)
			evs[i].T = rapid.Int64Min(0).Draw(t, "t")
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
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, b[:bytes.LastIndexByte(b[:len(b)-1], '\n')+1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated file: %v", err)
	}
	if err := WriteFile(p, Header{}, nil); err == nil {
		t.Fatal("nil recorder accepted")
	}
}

func TestFastParserDeclinesOddSpellings(t *testing.T) {
	for _, l := range []string{
		`{"seq":01,"t":0,"kind":"post","dev":0,"dir":"rx","queue":0,"index":0,"len":0,"buf":"0x0"}`,
		`{"seq":1, "t":0,"kind":"post","dev":0,"dir":"rx","queue":0,"index":0,"len":0,"buf":"0x0"}`,
		`{"seq":1,"t":0,"kind":"post","dev":0,"dir":"rx","queue":0,"index":0,"len":0,"buf":"0xA"}`,
		`{"seq":1,"t":0,"kind":"post","dev":0,"dir":"rx","queue":0,"index":0,"len":0,"buf":"0x0"} `,
		`{"seq":1,"t":0,"kind":"post","dev":0,"dir":"rx","queue":0,"index":0,"len":4294967296,"buf":"0x0"}`,
	} {
		if e, ok := parseEventFast([]byte(l)); ok {
			t.Errorf("fast parser accepted %s as %+v", l, e)
		}
	}
}

// The fast line parser agrees with encoding/json on every line the writer
// produces, and declines (rather than misreads) lines spelled otherwise.
func TestFastParserAgrees(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := drawEvent(t, Kind(rapid.IntRange(1, int(TCPState)-1).Draw(t, "kind")))
		e.Data = "" // a dev_violation's detail takes the encoding/json path
		e.Seq = rapid.Uint64().Draw(t, "seq")
		e.T = rapid.Int64().Draw(t, "t")
		line := AppendEventJSON(nil, e)
		got, ok := parseEventFast(line)
		if !ok || got != e {
			t.Fatalf("fast parse of %s: %+v %v", line, got, ok)
		}
		// Any single-byte change is either declined or parsed to what
		// encoding/json would read.
		i := rapid.IntRange(0, len(line)-1).Draw(t, "pos")
		mut := append([]byte(nil), line...)
		mut[i] = rapid.Byte().Draw(t, "byte")
		if fe, ok := parseEventFast(mut); ok {
			var j eventJSON
			if err := json.Unmarshal(mut, &j); err != nil {
				t.Fatalf("fast parser accepted %q that encoding/json rejects: %v", mut, err)
			}
			if j.Seq == nil || *j.Seq != fe.Seq || j.T != fe.T || j.Kind != fe.Kind.String() || j.Dev != fe.Dev ||
				j.Queue != fe.Queue || j.Index != fe.Index || j.Len != fe.Len || j.Dir != DirString(fe.Dir) ||
				(j.Aux != "" || fe.Aux != 0) && j.Aux != "0x"+strconv.FormatUint(fe.Aux, 16) {
				t.Fatalf("fast parser read %q as %+v, encoding/json as %+v", mut, fe, j)
			}
		}
	})
}

// drawEvent draws an event of kind k with the fields its layout carries:
// ring fields for ring and FIFO events, TCP fields for TCP events.
func drawEvent(t *rapid.T, k Kind) Event {
	if !k.IsTCP() {
		e := Event{
			Kind:  k,
			Dir:   uint8(rapid.IntRange(0, 1).Draw(t, "dir")),
			Dev:   rapid.Uint16().Draw(t, "dev"),
			Queue: rapid.Uint16().Draw(t, "q"),
			Index: rapid.Uint32().Draw(t, "idx"),
			Len:   rapid.Uint32().Draw(t, "len"),
			Buf:   rapid.Uint64().Draw(t, "buf"),
			Aux:   rapid.Uint64().Draw(t, "aux"),
		}
		if k == DevViolation {
			e.Data = rapid.String().Draw(t, "detail")
		}
		return e
	}
	return Event{
		Kind:  k,
		Conn:  rapid.Uint32().Draw(t, "conn"),
		State: rapid.Uint8().Draw(t, "state"),
		TSeq:  rapid.Uint32().Draw(t, "sn"),
		TAck:  rapid.Uint32().Draw(t, "an"),
		Flags: rapid.Uint8().Draw(t, "flags"),
		Wnd:   rapid.Uint32().Draw(t, "wnd"),
		Len:   rapid.Uint32().Draw(t, "len"),
		Index: rapid.Uint32().Draw(t, "idx"),
		Queue: rapid.Uint16().Draw(t, "q"),
		Buf:   rapid.Uint64().Draw(t, "buf"),
		Aux:   rapid.Uint64().Draw(t, "aux"),
		Call:  rapid.Int64().Draw(t, "call"),
		Data:  rapid.String().Draw(t, "data"),
	}
}

// The TCP fast parser reads back exactly what the writer wrote, for every
// TCP kind and field value, and declines lines spelled otherwise (which
// encoding/json then reads the same).
func TestTCPFastParserAgrees(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := drawEvent(t, Kind(rapid.IntRange(int(TCPState), int(kindCount)-1).Draw(t, "kind")))
		e.Seq = rapid.Uint64().Draw(t, "seq")
		e.T = rapid.Int64().Draw(t, "t")
		line := AppendEventJSON(nil, e)
		got, ok := parseTCPEventFast(line)
		if !ok || got != e {
			t.Fatalf("fast parse of %s: %+v %v", line, got, ok)
		}
		i := rapid.IntRange(0, len(line)-1).Draw(t, "pos")
		mut := append([]byte(nil), line...)
		mut[i] = rapid.Byte().Draw(t, "byte")
		if fe, ok := parseTCPEventFast(mut); ok {
			r, err := NewReader(strings.NewReader(`{"schema":"verinic-trace","version":2,"devices":[],"events":0,"dropped":0,"clock":"monotonic-ns"}` + "\n" + string(mut) + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			var j eventJSON
			if err := json.Unmarshal(mut, &j); err != nil {
				t.Fatalf("fast parser accepted %q that encoding/json rejects: %v", mut, err)
			}
			_ = r
			if j.Seq == nil || *j.Seq != fe.Seq || j.T != fe.T || j.Kind != fe.Kind.String() || j.Conn != fe.Conn ||
				j.SN != fe.TSeq || j.AN != fe.TAck || j.Len != fe.Len || j.Call != fe.Call || string(j.Data) != fe.Data {
				t.Fatalf("fast parser read %q as %+v, encoding/json as %+v", mut, fe, j)
			}
		}
	})
}

// The header's pool grids survive a write and a read, base as a hex string.
func TestHeaderPoolsRoundTrip(t *testing.T) {
	h := Header{Pools: []PoolInfo{{Dev: 1, Name: "rx0", Base: 0x7f0000200000, Stride: 2176, Count: 1024, Headroom: 128, Size: 2048, PerPage: 963, Page: 2 << 20}}}
	var buf bytes.Buffer
	if err := WriteEvents(&buf, h, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"base":"0x7f0000200000"`) {
		t.Fatalf("header line: %s", buf.String())
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Header().Pools; len(got) != 1 || got[0] != h.Pools[0] {
		t.Fatalf("pools read back: %+v, want %+v", got, h.Pools)
	}
}

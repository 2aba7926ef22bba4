package trace

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestPackAddrPortRoundTrip(t *testing.T) {
	for _, s := range []string{"10.9.0.2:80", "255.255.255.255:65535", "0.0.0.0:0", "192.168.1.7:40000"} {
		ap := netip.MustParseAddrPort(s)
		if got := UnpackAddrPort(PackAddrPort(ap)); got != ap {
			t.Errorf("%v -> %#x -> %v", ap, PackAddrPort(ap), got)
		}
	}
}

// The data arena keeps what fits, counts what does not, and allocates
// nothing per event.
func TestRecorderDataArena(t *testing.T) {
	r := NewRecorderWithData(16, 10)
	r.AppWrite(1, 0, 0, []byte("hello"))
	r.AppRead(2, 0, 0, []byte("world"), false)
	r.AppWrite(1, 0, 5, []byte("!"))
	ev := r.Events()
	if len(ev) != 3 || ev[0].Data != "hello" || ev[1].Data != "world" || ev[2].Data != "" {
		t.Fatalf("events %+v", ev)
	}
	if r.DataDropped() != 1 {
		t.Fatalf("DataDropped = %d, want 1", r.DataDropped())
	}
	buf := []byte("abc")
	if a := testing.AllocsPerRun(100, func() { r.Reset(); r.AppWrite(3, 0, 0, buf) }); a != 0 {
		t.Fatalf("AppWrite allocates %.1f times", a)
	}
}

// An event holding a large Write's bytes (a line of several megabytes)
// reads back: the reader once stopped at 1 MB lines ("token too long").
func TestLargeDataEventRoundTrip(t *testing.T) {
	r := NewRecorderWithData(4, 4<<20)
	data := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MB
	r.AppWrite(1, 0, 0, data)
	r.AppRead(2, 0, 0, data[:10], false)
	var b bytes.Buffer
	if err := WriteEvents(&b, Header{}, r.Events()); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := rd.ReadAll()
	if err != nil || len(evs) != 2 || evs[0].Data != string(data) || evs[1] != r.Events()[1] {
		t.Fatalf("%d events, %v", len(evs), err)
	}
}

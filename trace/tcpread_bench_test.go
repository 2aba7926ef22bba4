package trace

import (
	"bytes"
	"testing"
)

// BenchmarkReadTCPTrace reads back 100,000 TCP events (segments and
// application reads with 1 KiB of data each tenth event).
func BenchmarkReadTCPTrace(b *testing.B) {
	evs := make([]Event, 100000)
	data := string(bytes.Repeat([]byte("verinic!"), 128))
	for i := range evs {
		evs[i] = Event{Seq: uint64(i), T: int64(i) * 1000, Kind: TCPSegSent, Conn: 1 + uint32(i%7), TSeq: uint32(i) * 1448,
			TAck: 12345, Wnd: 65535 << 7, Flags: 0x10, Len: 1448, Index: SegOpts(SegOptTimestamp, 0, 0), Aux: uint64(i)<<32 | 7}
		if i%10 == 0 {
			evs[i] = Event{Seq: uint64(i), T: int64(i) * 1000, Kind: AppRead, Conn: 1, Call: int64(i)*1000 - 500, Len: 1024, Buf: uint64(i) * 1024, Data: data}
		}
	}
	var file bytes.Buffer
	if err := WriteEvents(&file, Header{}, evs); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(file.Len()))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(file.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		got, err := r.ReadAll()
		if err != nil || len(got) != len(evs) || got[10] != evs[10] || got[11] != evs[11] {
			b.Fatalf("read %d events, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(evs)), "ns/event")
}

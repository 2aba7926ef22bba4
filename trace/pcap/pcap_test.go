package pcap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/header/headertest"
)

func withFCS(frame []byte) []byte {
	f := append([]byte(nil), frame...)
	return binary.LittleEndian.AppendUint32(f, crc32.ChecksumIEEE(frame))
}

func readAll(t *testing.T, b []byte) ([]Frame, *Reader) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []Frame
	for {
		f, err := r.Next()
		if err == io.EOF {
			return out, r
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Data = append([]byte(nil), f.Data...)
		out = append(out, f)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Options{SnapLen: 100})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 29, 12, 0, 0, 123456789, time.UTC)
	frames := headertest.Frames()
	for i, s := range frames {
		if err := w.WriteFrame(base.Add(time.Duration(i)*time.Nanosecond), s.Frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.WriteFrame(base, frames[0].Frame); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteFrame after Close: %v", err)
	}
	got, r := readAll(t, buf.Bytes())
	if !r.Nanosecond() || r.SnapLen() != 100 {
		t.Fatalf("nanos %v snaplen %d", r.Nanosecond(), r.SnapLen())
	}
	if len(got) != len(frames) {
		t.Fatalf("%d frames read, %d written", len(got), len(frames))
	}
	for i, f := range got {
		want := frames[i].Frame
		if f.OrigLen != len(want) || !bytes.Equal(f.Data, want[:min(len(want), 100)]) {
			t.Fatalf("frame %d: %d/%d bytes, differs", i, len(f.Data), f.OrigLen)
		}
		if !f.Time.Equal(base.Add(time.Duration(i))) {
			t.Fatalf("frame %d time %v, want %v (nanosecond resolution)", i, f.Time, base.Add(time.Duration(i)))
		}
	}
	n, bytes := w.Stats()
	if n != uint64(len(frames)) || bytes == 0 {
		t.Fatalf("stats %d %d", n, bytes)
	}
}

// The reader also takes the other classic variants: big-endian and
// microsecond files (as written by other tools).
func TestReaderVariants(t *testing.T) {
	for _, c := range []struct {
		order binary.AppendByteOrder
		magic uint32
		frac  uint32
		want  int
	}{
		{binary.BigEndian, magicMicros, 7, 7000},
		{binary.LittleEndian, magicMicros, 7, 7000},
		{binary.BigEndian, magicNanos, 7, 7},
	} {
		var b []byte
		b = c.order.AppendUint32(b, c.magic)
		b = c.order.AppendUint16(b, 2)
		b = c.order.AppendUint16(b, 4)
		b = append(b, make([]byte, 8)...)
		b = c.order.AppendUint32(b, 65535)
		b = c.order.AppendUint32(b, 1)
		b = c.order.AppendUint32(b, 1000)
		b = c.order.AppendUint32(b, c.frac)
		b = c.order.AppendUint32(b, 3)
		b = c.order.AppendUint32(b, 60)
		b = append(b, 1, 2, 3)
		got, _ := readAll(t, b)
		if len(got) != 1 || got[0].Time.Nanosecond() != c.want || got[0].OrigLen != 60 || !bytes.Equal(got[0].Data, []byte{1, 2, 3}) {
			t.Fatalf("%v %#x: %+v", c.order, c.magic, got)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 24), append(binary.LittleEndian.AppendUint32(nil, magicNanos), make([]byte, 20)...)} {
		if _, err := NewReader(bytes.NewReader(bad)); err == nil {
			t.Errorf("bad header % x accepted", bad)
		}
	}
	// A record claiming more bytes than the snap length is an error, not a
	// huge allocation.
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Options{SnapLen: 64})
	w.WriteFrame(time.Now(), make([]byte, 60))
	w.Close()
	b := buf.Bytes()
	binary.LittleEndian.PutUint32(b[24+8:], 1<<30)
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err == nil || err == io.EOF {
		t.Fatalf("corrupt record: %v", err)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteErrorsAreSticky(t *testing.T) {
	w, err := NewWriter(&failWriter{n: 24}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1500)
	var first error
	for i := 0; i < 100 && first == nil; i++ {
		first = w.WriteFrame(time.Now(), big)
	}
	if first == nil {
		first = w.Flush()
	}
	if first == nil {
		t.Fatal("no error from a failing writer")
	}
	if err := w.WriteFrame(time.Now(), big); err == nil || w.Err() == nil {
		t.Fatal("error not sticky")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close hid the error")
	}
}

// Frames from several goroutines (both directions of a wire) interleave
// whole; run with -race.
func TestConcurrentWriters(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			f := bytes.Repeat([]byte{byte(g)}, 60+g)
			for i := 0; i < 500; i++ {
				if err := w.WriteFrame(time.Now(), f); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	w.Close()
	got, _ := readAll(t, buf.Bytes())
	if len(got) != 2000 {
		t.Fatalf("%d frames", len(got))
	}
	for _, f := range got {
		g := int(f.Data[0])
		if len(f.Data) != 60+g || !bytes.Equal(f.Data, bytes.Repeat([]byte{byte(g)}, 60+g)) {
			t.Fatal("interleaved frame")
		}
	}
}

type sink struct {
	mu     sync.Mutex
	frames [][]byte
	accept bool
}

func (s *sink) Receive(f []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames = append(s.frames, append([]byte(nil), f...))
	return s.accept
}
func (s *sink) Transmit(f []byte) { s.Receive(f) }
func (s *sink) Up() bool          { return true }

func TestTapsAndWire(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Options{})
	a, b := &sink{accept: true}, &sink{}
	la, lb := Wire(w, a, b, TapOptions{})
	f1 := withFCS(headertest.UDPFrame(headertest.Options{}, 20))
	f2 := withFCS(headertest.ARPFrame(header.ARPReply))
	la.Transmit(f1) // a → b
	lb.Transmit(f2) // b → a
	if !la.Up() || len(b.frames) != 1 || !bytes.Equal(b.frames[0], f1) || len(a.frames) != 1 || !bytes.Equal(a.frames[0], f2) {
		t.Fatal("wire did not deliver the frames intact, FCS included")
	}
	inner := &sink{}
	tl := Tap(inner, w, TapOptions{KeepFCS: true})
	tl.Transmit(f1)
	tr := TapReceiver(inner, w, TapOptions{})
	if tr.Receive(f2) {
		t.Fatal("TapReceiver changed the inner receiver's answer")
	}
	w.Close()
	got, _ := readAll(t, buf.Bytes())
	want := [][]byte{f1[:len(f1)-4], f2[:len(f2)-4], f1, f2[:len(f2)-4]}
	if len(got) != len(want) {
		t.Fatalf("%d frames recorded", len(got))
	}
	for i := range want {
		if !bytes.Equal(got[i].Data, want[i]) {
			t.Fatalf("recorded frame %d differs (FCS handling)", i)
		}
	}
}

// TestTsharkAcceptsCapture writes every sample frame through a wire and has
// tshark dissect the file with checksum validation on: no malformed frame,
// no bad checksum. A control capture with one corrupted UDP checksum and one
// truncated frame must be flagged, so that the check is known to bite.
func TestTsharkAcceptsCapture(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pcap")
	w, err := Create(good, Options{})
	if err != nil {
		t.Fatal(err)
	}
	la, _ := Wire(w, &sink{}, &sink{}, TapOptions{})
	frames := headertest.Frames()
	for _, s := range frames {
		la.Transmit(withFCS(s.Frame))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The file reads back with the independent reader first.
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := readAll(t, data); len(got) != len(frames) {
		t.Fatalf("read back %d frames, wrote %d", len(got), len(frames))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Tshark(ctx, good)
	if errors.Is(err, ErrNoTshark) {
		t.Skipf("skipping the tshark check: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Frames != len(frames) || rep.Malformed != 0 || rep.BadChecksums != 0 || rep.ExpertErrors != 0 {
		t.Fatalf("tshark on the sample capture: %+v (want %d frames, nothing wrong)", rep, len(frames))
	}

	bad := filepath.Join(dir, "bad.pcap")
	w, err = Create(bad, Options{})
	if err != nil {
		t.Fatal(err)
	}
	udp := headertest.UDPFrame(headertest.Options{}, 20)
	udp[len(udp)-1]++ // UDP checksum now wrong
	tcp := headertest.TCPFrame(headertest.Options{}, header.TCPFlagSYN, headertest.TCPOptionsSYN(), 0)
	w.WriteFrame(time.Now(), udp)
	w.WriteFrame(time.Now(), tcp[:40]) // cut inside the TCP header
	w.Close()
	rep, err = Tshark(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Frames != 2 || rep.BadChecksums != 1 || rep.Malformed != 1 {
		t.Fatalf("tshark on the corrupted capture: %+v (want 1 bad checksum, 1 malformed)", rep)
	}
}

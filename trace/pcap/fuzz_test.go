package pcap

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// FuzzReader feeds arbitrary bytes to the reader: it must return frames or
// errors, never panic, and never hand out a record larger than the snap
// length. Seeds: a valid file and its truncations.
func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Options{SnapLen: 128})
	w.WriteFrame(time.Unix(1, 2), bytes.Repeat([]byte{0xab}, 60))
	w.WriteFrame(time.Unix(3, 4), bytes.Repeat([]byte{0xcd}, 200))
	w.Close()
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:30])
	f.Add(buf.Bytes()[:24])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i := 0; i < 1000; i++ {
			fr, err := r.Next()
			if err != nil {
				if err != io.EOF && err.Error() == "" {
					t.Fatal("empty error")
				}
				return
			}
			if len(fr.Data) > r.SnapLen() || len(fr.Data) > fr.OrigLen {
				t.Fatalf("record of %d bytes (orig %d) beyond snap length %d", len(fr.Data), fr.OrigLen, r.SnapLen())
			}
		}
	})
}

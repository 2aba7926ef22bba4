package buffer

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

// model is the reference: the ring's contents by offset from the head, with
// known[i] false where the ring holds unspecified bytes (never written, or
// stale after the head moved past them).
type model struct {
	data  []byte
	known []bool
	n     int
}

func (m *model) cap() int { return len(m.data) }

func (m *model) shift(k int) {
	copy(m.data, m.data[k:])
	copy(m.known, m.known[k:])
	for i := len(m.data) - k; i < len(m.data); i++ {
		m.known[i] = false
	}
	m.n -= k
}

// checkRange compares the bytes got at offsets [off, off+len(got)) with the
// model where the model knows them.
func (m *model) checkRange(t *rapid.T, what string, off int, got []byte) {
	for i, c := range got {
		if m.known[off+i] && m.data[off+i] != c {
			t.Fatalf("%s: offset %d: got %#x, want %#x", what, off+i, c, m.data[off+i])
		}
	}
}

func TestRingMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := rapid.IntRange(0, 64).Draw(t, "cap")
		r := NewRing(c)
		m := &model{data: make([]byte, c), known: make([]bool, c)}
		bytesGen := rapid.SliceOfN(rapid.Byte(), 0, 80)
		offGen := func(t *rapid.T, label string) int {
			return rapid.IntRange(0, m.cap()+4).Draw(t, label)
		}
		t.Repeat(map[string]func(*rapid.T){
			"": func(t *rapid.T) {
				if r.Len() != m.n || r.Cap() != m.cap() || r.Free() != m.cap()-m.n {
					t.Fatalf("Len/Cap/Free %d/%d/%d, want %d/%d/%d", r.Len(), r.Cap(), r.Free(), m.n, m.cap(), m.cap()-m.n)
				}
				all := make([]byte, m.n+3)
				if got := r.Peek(0, all); got != m.n {
					t.Fatalf("Peek(0, %d) = %d, want %d", len(all), got, m.n)
				}
				m.checkRange(t, "contents", 0, all[:m.n])
				a, b := r.Slices(0, m.n)
				if len(a)+len(b) != m.n || (len(a) == 0 && len(b) != 0) {
					t.Fatalf("Slices(0, %d) lengths %d+%d", m.n, len(a), len(b))
				}
				if !bytes.Equal(append(append([]byte{}, a...), b...), all[:m.n]) {
					t.Fatalf("Slices disagree with Peek")
				}
			},
			"Write": func(t *rapid.T) {
				p := bytesGen.Draw(t, "p")
				want := min(len(p), m.cap()-m.n)
				if got := r.Write(p); got != want {
					t.Fatalf("Write(%d bytes) = %d, want %d", len(p), got, want)
				}
				copy(m.data[m.n:], p[:want])
				for i := m.n; i < m.n+want; i++ {
					m.known[i] = true
				}
				m.n += want
			},
			"Read": func(t *rapid.T) {
				p := make([]byte, rapid.IntRange(0, m.cap()+4).Draw(t, "len"))
				want := min(len(p), m.n)
				if got := r.Read(p); got != want {
					t.Fatalf("Read(%d) = %d, want %d", len(p), got, want)
				}
				m.checkRange(t, "Read", 0, p[:want])
				m.shift(want)
			},
			"Peek": func(t *rapid.T) {
				off := offGen(t, "off")
				p := make([]byte, rapid.IntRange(0, m.cap()+4).Draw(t, "len"))
				want := 0
				if off < m.n {
					want = min(len(p), m.n-off)
				}
				if got := r.Peek(off, p); got != want {
					t.Fatalf("Peek(%d, %d) = %d, want %d", off, len(p), got, want)
				}
				m.checkRange(t, "Peek", off, p[:want])
			},
			"Discard": func(t *rapid.T) {
				k := rapid.IntRange(0, m.n).Draw(t, "n")
				r.Discard(k)
				m.shift(k)
			},
			"WriteAt": func(t *rapid.T) {
				off := offGen(t, "off")
				p := bytesGen.Draw(t, "p")
				want := 0
				if off < m.cap() {
					want = min(len(p), m.cap()-off)
				}
				if got := r.WriteAt(off, p); got != want {
					t.Fatalf("WriteAt(%d, %d bytes) = %d, want %d", off, len(p), got, want)
				}
				for i := max(off, m.n); i < off+want; i++ {
					m.data[i], m.known[i] = p[i-off], true
				}
			},
			"Extend": func(t *rapid.T) {
				k := rapid.IntRange(0, m.cap()-m.n).Draw(t, "n")
				r.Extend(k)
				m.n += k
			},
			"Slices": func(t *rapid.T) {
				off := rapid.IntRange(0, m.n).Draw(t, "off")
				k := rapid.IntRange(0, m.n-off).Draw(t, "n")
				a, b := r.Slices(off, k)
				if len(a)+len(b) != k || cap(a) != len(a) || cap(b) != len(b) {
					t.Fatalf("Slices(%d, %d): lengths %d+%d caps %d+%d", off, k, len(a), len(b), cap(a), cap(b))
				}
				if len(b) > 0 && len(a) == 0 {
					t.Fatalf("Slices(%d, %d): empty a with non-empty b", off, k)
				}
				m.checkRange(t, "Slices a", off, a)
				m.checkRange(t, "Slices b", off+len(a), b)
			},
			"Grow": func(t *rapid.T) {
				nc := rapid.IntRange(0, 96).Draw(t, "newCap")
				r.Grow(nc)
				if nc > m.cap() {
					m.data = append(m.data, make([]byte, nc-m.cap())...)
					m.known = append(m.known, make([]bool, nc-len(m.known))...)
				}
			},
			"Reset": func(t *rapid.T) {
				r.Reset()
				m.n = 0
				clear(m.known)
			},
		})
	})
}

// The out-of-order receive path: a segment parked beyond a gap, the ring
// wrapped, the gap filled and both published with Extend.
func TestRingReceiveWrap(t *testing.T) {
	r := NewRing(8)
	r.Write([]byte("abcdef"))
	var p [8]byte
	r.Read(p[:5]) // head at index 5, Len 1 ("f")
	if n := r.WriteAt(3, []byte("XYZ")); n != 3 {
		t.Fatalf("WriteAt = %d", n)
	}
	if n := r.WriteAt(1, []byte("gh")); n != 2 {
		t.Fatalf("WriteAt = %d", n)
	}
	if r.Len() != 1 {
		t.Fatalf("WriteAt changed Len to %d", r.Len())
	}
	r.Extend(5)
	n := r.Peek(0, p[:])
	if got := string(p[:n]); got != "fghXYZ" {
		t.Fatalf("contents %q, want %q", got, "fghXYZ")
	}
	a, b := r.Slices(1, 5) // offsets 1, 2 sit at the end of the storage
	if string(a) != "gh" || string(b) != "XYZ" {
		t.Fatalf("Slices = %q, %q", a, b)
	}
	// A retransmission overlapping readable data does not overwrite it.
	if n := r.WriteAt(4, []byte("QQQQQQ")); n != 4 {
		t.Fatalf("WriteAt at 4 = %d, want 4 (clipped at Cap)", n)
	}
	n = r.Peek(0, p[:])
	if got := string(p[:n]); got != "fghXYZ" {
		t.Fatalf("readable data overwritten: %q", got)
	}
	// Grow keeps parked data at its offset.
	r.Grow(16)
	r.Extend(2)
	n = r.Peek(0, p[:])
	if got := string(p[:n]); got != "fghXYZQQ" {
		t.Fatalf("after Grow: %q", got)
	}
}

func TestRingPanics(t *testing.T) {
	r := NewRing(4)
	r.Write([]byte("ab"))
	for name, f := range map[string]func(){
		"Discard past Len": func() { r.Discard(3) },
		"Extend past Cap":  func() { r.Extend(3) },
		"Slices past Len":  func() { r.Slices(1, 2) },
		"Peek negative":    func() { r.Peek(-1, nil) },
		"WriteAt negative": func() { r.WriteAt(-1, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestRingNoAllocs(t *testing.T) {
	r := NewRing(1000)
	p := make([]byte, 300)
	allocs := testing.AllocsPerRun(1000, func() {
		r.Write(p)
		r.WriteAt(r.Len()+100, p[:50])
		r.Peek(10, p[:100])
		a, b := r.Slices(0, r.Len())
		_, _ = a, b
		r.Extend(min(r.Free(), 10))
		r.Read(p[:200])
		r.Discard(min(r.Len(), 110))
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run, want 0", allocs)
	}
}

func BenchmarkRingWriteRead1460(b *testing.B) {
	r := NewRing(64 << 10)
	p := make([]byte, 1460)
	b.SetBytes(1460)
	for b.Loop() {
		r.Write(p)
		r.Read(p)
	}
}

func BenchmarkRingPeek1460(b *testing.B) {
	r := NewRing(64 << 10)
	r.Write(make([]byte, 60<<10))
	p := make([]byte, 1460)
	b.SetBytes(1460)
	off := 0
	for b.Loop() {
		r.Peek(off, p)
		off += 1460
		if off > 58<<10 {
			off = 0
		}
	}
}

func BenchmarkRingSlices(b *testing.B) {
	r := NewRing(64 << 10)
	r.Write(make([]byte, 60<<10))
	off := 0
	for b.Loop() {
		x, y := r.Slices(off, 1460)
		_, _ = x, y
		off += 1460
		if off > 58<<10 {
			off = 0
		}
	}
}

func BenchmarkRingWriteAtExtend1460(b *testing.B) {
	r := NewRing(64 << 10)
	p := make([]byte, 1460)
	b.SetBytes(1460)
	for b.Loop() {
		r.WriteAt(r.Len()+1460, p)
		r.WriteAt(r.Len(), p)
		r.Extend(2920)
		r.Discard(2920)
	}
}

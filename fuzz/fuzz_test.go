package fuzz

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/verinic/verinic/proto/checksum"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/header/headertest"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzDifferential seeds")

func FuzzDifferential(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := compare(b); err != nil {
			t.Fatalf("%v\nframe: % x", err, b)
		}
	})
}

// seedFrames are the sample frames plus variants that reach each documented
// difference.
func seedFrames() [][]byte {
	var out [][]byte
	for _, s := range headertest.Frames() {
		out = append(out, s.Frame)
	}
	udp := headertest.UDPFrame(headertest.Options{}, 12)
	tcp := headertest.TCPFrame(headertest.Options{}, header.TCPFlagSYN, headertest.TCPOptionsSYN(), 0)
	edit := func(b []byte, f func([]byte)) []byte { c := append([]byte(nil), b...); f(c); return c }
	out = append(out,
		edit(udp, func(b []byte) { b[14] = 0x65; fixIP(b) }),                                   // IPv6 version nibble
		edit(udp, func(b []byte) { b[16], b[17] = 0, 0; fixIP(b) }),                            // total length 0
		edit(udp, func(b []byte) { b[14+8]++ }),                                                // IP checksum
		edit(udp, func(b []byte) { b[34+4], b[34+5] = 0, 0 }),                                  // UDP length 0
		edit(udp, func(b []byte) { b[len(b)-1]++ }),                                            // UDP checksum
		edit(tcp, func(b []byte) { b[55] = 3; fixTCP(b) }),                                     // MSS length 3
		edit(headertest.ARPFrame(header.ARPRequest), func(b []byte) { b[15] = 6 }),             // ARP htype 6
		edit(headertest.UDPFrame(headertest.Options{IPOptions: []byte{1, 7, 2, 0}}, 3), fixIP), // option length 2
		edit(udp, func(b []byte) { binary.BigEndian.PutUint16(b[12:], 0x88a8) }),               // QinQ
		edit(udp, func(b []byte) { binary.BigEndian.PutUint16(b[12:], 46) }),                   // 802.3 length
		edit(udp, func(b []byte) { binary.BigEndian.PutUint16(b[14+6:], 0x1fff); fixIP(b) }),   // fragment overflow
	)
	return out
}

func fixIP(b []byte) {
	ip := header.IPv4(b[14:])
	hl := ip.HeaderLen()
	if hl < 20 || 14+hl > len(b) {
		return
	}
	b[24], b[25] = 0, 0
	binary.BigEndian.PutUint16(b[24:], checksum.Checksum(b[14:14+hl], 0))
}

func fixTCP(b []byte) {
	seg := b[34:]
	seg[16], seg[17] = 0, 0
	ph := checksum.PseudoHeaderSum(headertest.IPA, headertest.IPB, header.IPProtocolTCP, uint16(len(seg)))
	binary.BigEndian.PutUint16(seg[16:], checksum.Checksum(seg, ph))
}

func TestDifferentialSeeds(t *testing.T) {
	for i, b := range seedFrames() {
		if err := compare(b); err != nil {
			t.Errorf("seed %d: %v\nframe: % x", i, err, b)
		}
	}
}

// TestDifferentialMutations runs the oracle over deterministic mutations of
// the seeds (bit flips, byte stores, truncations), with checksums repaired
// half of the time so that deeper checks are reached. It is the part of the
// fuzz target that runs in every `go test`.
func TestDifferentialMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	seeds := seedFrames()
	for i := 0; i < n; i++ {
		b := append([]byte(nil), seeds[rng.IntN(len(seeds))]...)
		for k := rng.IntN(3) + 1; k > 0; k-- {
			switch rng.IntN(3) {
			case 0:
				j := rng.IntN(len(b) * 8)
				b[j/8] ^= 1 << (j % 8)
			case 1:
				b[rng.IntN(min(len(b), 80))] = byte(rng.Uint32())
			case 2:
				b = b[:rng.IntN(len(b)+1)]
			}
			if len(b) == 0 {
				break
			}
		}
		if rng.IntN(2) == 0 && len(b) >= 34 && binary.BigEndian.Uint16(b[12:]) == header.EtherTypeIPv4 {
			fixIP(b)
			if b[23] == header.IPProtocolTCP && len(b) >= 54 {
				fixTCP(b)
			}
		}
		if err := compare(b); err != nil {
			t.Fatalf("mutation %d: %v\nframe: % x", i, err, b)
		}
	}
}

func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDifferential")
	for _, b := range seedFrames() {
		data := []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b))
		path := filepath.Join(dir, fmt.Sprintf("seed-%x", sha256.Sum256(data))[:21])
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
			t.Errorf("seed %s missing or stale (go test -run TestFuzzSeedCorpus -update-corpus ./fuzz): %v", path, err)
		}
	}
}

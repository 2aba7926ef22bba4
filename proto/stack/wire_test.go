package stack

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/trace/pcap"
)

// frameLog keeps copies of the frames an endpoint sends.
type frameLog struct {
	mu     sync.Mutex
	frames [][]byte
}

func tapFrames(e *memlink.Endpoint) *frameLog {
	l := &frameLog{}
	e.SetTap(func(f []byte) {
		l.mu.Lock()
		l.frames = append(l.frames, append([]byte(nil), f...))
		l.mu.Unlock()
	})
	return l
}

// icmp returns the ICMP messages among the logged frames, with their IP
// headers.
func (l *frameLog) icmp() []header.IPv4 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []header.IPv4
	for _, f := range l.frames {
		eth, err := header.ParseEthernet(f)
		if err != nil || eth.EtherType() != header.EtherTypeIPv4 {
			continue
		}
		ip, err := header.ParseIPv4(eth.Payload())
		if err == nil && ip.Protocol() == header.IPProtocolICMP {
			out = append(out, ip)
		}
	}
	return out
}

// writePcap writes the logged frames to a capture in dir.
func (l *frameLog) writePcap(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "frames.pcap")
	w, err := pcap.Create(path, pcap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	for _, f := range l.frames {
		if err := w.WriteFrame(time.Unix(1, 0), f); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.Unlock()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// tsharkClean checks a capture with tshark (checksums on), skipping when
// tshark is not installed.
func tsharkClean(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := pcap.Tshark(ctx, path)
	if errors.Is(err, pcap.ErrNoTshark) {
		t.Log("tshark not installed: capture not dissected")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("tshark flags %d frames of %d: %v", len(rep.Flagged), rep.Frames, rep.Flagged)
	}
}

// A datagram that times out in reassembly is answered with ICMP Time
// Exceeded, code 1 (RFC 792), quoting its first fragment's IP header as
// received: total length and checksum untouched, as Linux's ip_expire
// quotes the head fragment (RFC 1812 4.3.2.3: the quote is the offending
// datagram's header as it arrived).
func TestReassemblyTimeExceededQuotesOriginalHeader(t *testing.T) {
	p := newPair(t, true, memlink.Faults{}, memlink.Faults{}, Config{})
	p.settle()
	sent := tapFrames(p.lb)
	data := udpPayload(7, bytes.Repeat([]byte{0xab}, 200))
	first := ipFrame(17, 77, 0, true, data[:104])
	p.la.Inject(first)
	p.settle()
	p.advance(31*time.Second, time.Second)
	var te header.IPv4
	for _, ip := range sent.icmp() {
		if m := header.ICMPv4(ip.Payload()); m.Type() == header.ICMPv4TimeExceeded && m.Code() == header.ICMPv4ReassemblyExceeded {
			te = ip
		}
	}
	if te == nil {
		t.Fatalf("no ICMP Time Exceeded (B: %v)", nonZero(p.b.Counters()))
	}
	quote := header.ICMPv4(te.Payload()).Payload()
	orig := first[14:]
	if len(quote) < 28 || !bytes.Equal(quote[:20], orig[:20]) {
		t.Fatalf("quoted header\n% x\nwant the fragment's\n% x", quote[:min(len(quote), 20)], orig[:20])
	}
	if !header.IPv4(quote).ChecksumValid() {
		t.Fatal("quoted header checksum does not verify")
	}
	if !bytes.Equal(quote[20:], orig[20:20+len(quote)-20]) {
		t.Fatal("quoted data differs from the fragment's")
	}
	if c := p.b.Counters(); c.Get(ICMPTimeExceededOut) != 1 {
		t.Fatalf("icmp_time_exceeded_out %d, want 1", c.Get(ICMPTimeExceededOut))
	}
	tsharkClean(t, sent.writePcap(t, t.TempDir()))
}

package header_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/header/headertest"
)

// The fuzz targets below check, for any input, that parsing never panics,
// never writes to its input, that accessors on a parsed view never panic,
// and that re-encoding the fields a parser returned reproduces the header
// bytes it accepted (so no field is misread). Seeds live in
// testdata/fuzz/FuzzX; TestFuzzSeedCorpus keeps them in step with
// headertest's sample frames (regenerate with -update-corpus).

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz seed files from headertest's sample frames")

const (
	ipA = 0xc0000201 // headertest.IPA
	ipB = 0xc0000202 // headertest.IPB
)

// seed is one corpus entry: the fuzz target's arguments.
type seed []any

// seeds returns the seed inputs of each fuzz target: every sample frame cut
// at each layer, plus a few malformed variants.
func seeds() map[string][]seed {
	s := map[string][]seed{}
	for _, nf := range headertest.Frames() {
		fr := nf.Frame
		s["FuzzDecodeFrame"] = append(s["FuzzDecodeFrame"], seed{fr})
		s["FuzzParseEthernet"] = append(s["FuzzParseEthernet"], seed{fr})
		var f header.Frame
		if err := header.DecodeFrame(fr, &f); err != nil {
			panic(fmt.Sprintf("sample %s does not decode: %v", nf.Name, err))
		}
		if f.ARP() != nil {
			s["FuzzParseARP"] = append(s["FuzzParseARP"], seed{[]byte(f.ARP())})
		}
		if f.IPv4() != nil {
			s["FuzzParseIPv4"] = append(s["FuzzParseIPv4"], seed{[]byte(f.IPv4())})
		}
		if f.ICMPv4() != nil {
			s["FuzzParseICMPv4"] = append(s["FuzzParseICMPv4"], seed{[]byte(f.ICMPv4())})
		}
		if f.UDP() != nil {
			s["FuzzParseUDP"] = append(s["FuzzParseUDP"], seed{[]byte(f.UDP()), uint32(ipA), uint32(ipB)})
		}
		if f.TCP() != nil {
			s["FuzzParseTCP"] = append(s["FuzzParseTCP"], seed{[]byte(f.TCP()), uint32(ipA), uint32(ipB)})
		}
	}
	// Malformed seeds: truncations and a zero-length TCP option.
	udp := headertest.UDPFrame(headertest.Options{}, 4)
	s["FuzzDecodeFrame"] = append(s["FuzzDecodeFrame"], seed{udp[:30]}, seed{udp[:13]})
	s["FuzzParseIPv4"] = append(s["FuzzParseIPv4"], seed{udp[14:30]})
	tcp := headertest.TCPFrame(headertest.Options{}, header.TCPFlagSYN, headertest.TCPOptionsSYN(), 0)[34:]
	tcp = append([]byte(nil), tcp...)
	tcp[21] = 0
	s["FuzzParseTCP"] = append(s["FuzzParseTCP"], seed{tcp, uint32(ipA), uint32(ipB)})
	return s
}

func corpusFile(s seed) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range s {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case uint32:
			fmt.Fprintf(&b, "uint32(%d)\n", v)
		default:
			panic(fmt.Sprintf("corpus: unsupported type %T", a))
		}
	}
	return b.Bytes()
}

// TestFuzzSeedCorpus checks that every seed is committed under testdata/fuzz
// (or writes them with -update-corpus).
func TestFuzzSeedCorpus(t *testing.T) {
	for target, list := range seeds() {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range list {
			data := corpusFile(s)
			name := fmt.Sprintf("seed-%x", sha256.Sum256(data))[:21]
			path := filepath.Join(dir, name)
			if *updateCorpus {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("seed %s missing or stale (run go test -run TestFuzzSeedCorpus -update-corpus ./proto/header): %v", path, err)
			}
		}
	}
}

func addr(v uint32) header.IPv4Addr { return header.IPv4AddrFromUint32(v) }

// parseUnchanged runs parse and fails if it modified its input.
func parseUnchanged(t *testing.T, b []byte, parse func()) {
	orig := append([]byte(nil), b...)
	parse()
	if !bytes.Equal(orig, b) {
		t.Fatalf("parser modified its input")
	}
}

func FuzzParseEthernet(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var e header.Ethernet
		var err error
		parseUnchanged(t, b, func() { e, err = header.ParseEthernet(b) })
		if err != nil {
			return
		}
		out := make([]byte, 18)
		var n int
		if tci, ok := e.VLAN(); ok {
			n = header.EncodeEthernetVLAN(out, e.Dst(), e.Src(), tci, e.EtherType())
		} else {
			n = header.EncodeEthernet(out, e.Dst(), e.Src(), e.EtherType())
		}
		if n != e.HeaderLen() || !bytes.Equal(out[:n], b[:n]) || len(e.Payload()) != len(b)-n {
			t.Fatalf("re-encoded header % x differs from % x", out[:n], b[:n])
		}
	})
}

func FuzzParseARP(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var a header.ARP
		var err error
		parseUnchanged(t, b, func() { a, err = header.ParseARP(b) })
		if err != nil {
			return
		}
		out := make([]byte, header.ARPLen)
		header.EncodeARP(out, a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP())
		if !bytes.Equal(out, b[:header.ARPLen]) || len(a) != header.ARPLen {
			t.Fatalf("re-encoded ARP % x differs from % x", out, b[:header.ARPLen])
		}
	})
}

// sameChecksum compares checksum fields as one's complement numbers: when
// the rest of the covered data sums to -0, both 0x0000 and 0xFFFF verify.
func sameChecksum(a, b uint16) bool { return a%0xffff == b%0xffff }

func FuzzParseIPv4(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var ip header.IPv4
		var err error
		parseUnchanged(t, b, func() { ip, err = header.ParseIPv4(b) })
		if err != nil {
			return
		}
		if !ip.ChecksumValid() || len(ip) != int(ip.TotalLen()) || ip.HeaderLen() < 20 || len(ip.Payload()) != len(ip)-ip.HeaderLen() {
			t.Fatalf("accepted inconsistent packet % x", b)
		}
		fields := header.IPv4Fields{
			TOS: ip.TOS(), TotalLen: ip.TotalLen(), ID: ip.ID(), Flags: ip.Flags(),
			FragOffset: uint16(ip.FragmentOffset()), TTL: ip.TTL(), Protocol: ip.Protocol(),
			Src: ip.Src(), Dst: ip.Dst(), Options: ip.Options(),
		}
		out := make([]byte, ip.HeaderLen())
		n := header.EncodeIPv4(out, fields)
		got, want := header.IPv4(out).Checksum(), ip.Checksum()
		out[10], out[11] = b[10], b[11]
		if n != ip.HeaderLen() || !bytes.Equal(out, b[:n]) || !sameChecksum(got, want) {
			t.Fatalf("re-encoded header % x differs from % x", out, b[:n])
		}
		// A TTL rewrite keeps the header valid.
		c := append([]byte(nil), ip...)
		header.IPv4(c).SetTTL(ip.TTL() - 1)
		if !header.IPv4(c).ChecksumValid() {
			t.Fatalf("SetTTL broke the checksum of % x", b)
		}
	})
}

func FuzzParseICMPv4(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var m header.ICMPv4
		var err error
		parseUnchanged(t, b, func() { m, err = header.ParseICMPv4(b) })
		if err != nil {
			return
		}
		out := append([]byte(nil), b...)
		header.EncodeICMPv4(out, m.Type(), m.Code(), m.RestOfHeader(), len(m.Payload()))
		if !sameChecksum(header.ICMPv4(out).Checksum(), m.Checksum()) {
			t.Fatalf("re-encoded checksum %#04x, parsed %#04x", header.ICMPv4(out).Checksum(), m.Checksum())
		}
		_ = m.IsError()
		_, _, _, _ = m.Ident(), m.Seq(), m.Pointer(), m.Gateway()
	})
}

func FuzzParseUDP(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, src, dst uint32) {
		var u header.UDP
		var err error
		parseUnchanged(t, b, func() { u, err = header.ParseUDP(b, addr(src), addr(dst)) })
		if err != nil {
			return
		}
		if len(u) != int(u.Length()) || len(u.Payload()) != len(u)-8 {
			t.Fatalf("accepted inconsistent datagram % x", b)
		}
		if u.Checksum() == 0 {
			return
		}
		out := append([]byte(nil), u...)
		header.EncodeUDP(out, u.SrcPort(), u.DstPort(), len(u.Payload()), addr(src), addr(dst))
		if !bytes.Equal(out, u) {
			t.Fatalf("re-encoded datagram % x differs from % x", out, []byte(u))
		}
	})
}

func FuzzParseTCP(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, src, dst uint32) {
		var seg header.TCP
		var err error
		parseUnchanged(t, b, func() { seg, err = header.ParseTCP(b, addr(src), addr(dst)) })
		if err != nil {
			return
		}
		var o header.TCPOptions
		if err := header.ParseTCPOptions(seg, &o); err != nil {
			t.Fatalf("ParseTCP accepted options that ParseTCPOptions rejects: %v", err)
		}
		if o.SACKBlockCount > header.TCPMaxSACKBlocks || o.WindowScale > header.TCPMaxWindowScale {
			t.Fatalf("options out of range: %+v", o)
		}
		fields := header.TCPFields{
			SrcPort: seg.SrcPort(), DstPort: seg.DstPort(), Seq: seg.Seq(), Ack: seg.Ack(),
			Flags: seg.Flags(), Window: seg.Window(), Urgent: seg.Urgent(), Options: seg.OptionBytes(),
		}
		out := append([]byte(nil), seg...)
		n := header.EncodeTCP(out, fields, len(seg.Payload()), addr(src), addr(dst))
		got := binary.BigEndian.Uint16(out[16:])
		out[12] = out[12]&0xf0 | seg[12]&0x0f // reserved bits and AE are not encoded
		out[16], out[17] = seg[16], seg[17]
		// With reserved bits set in the input, the checksums cover different
		// bytes and cannot be compared.
		if n != seg.HeaderLen() || !bytes.Equal(out, seg) || (seg[12]&0x0f == 0 && !sameChecksum(got, seg.Checksum())) {
			t.Fatalf("re-encoded segment % x differs from % x", out, []byte(seg))
		}
	})
}

// views are a decoded frame's layers, as separate slices.
type views struct{ eth, arp, ip, icmp, udp, tcp []byte }

func viewsOf(f *header.Frame) views {
	return views{f.Ethernet(), f.ARP(), f.IPv4(), f.ICMPv4(), f.UDP(), f.TCP()}
}

// chain decodes b with the exported per-layer parsers, as a demultiplexer
// would: the reference DecodeFrame's fast paths must agree with. With
// verified, it uses the parsers that skip IPv4, UDP and TCP checksums.
func chain(b []byte, verified bool) (views, error) {
	var f views
	eth, err := header.ParseEthernet(b)
	if err != nil {
		return f, err
	}
	f.eth = eth
	switch eth.EtherType() {
	case header.EtherTypeARP:
		f.arp, err = header.ParseARP(eth.Payload())
		return f, err
	case header.EtherTypeIPv4:
	default:
		return f, nil
	}
	parseIP := header.ParseIPv4
	if verified {
		parseIP = header.ParseIPv4Verified
	}
	ip, err := parseIP(eth.Payload())
	if err != nil {
		return f, err
	}
	f.ip = ip
	if ip.IsFragment() {
		return f, nil
	}
	switch ip.Protocol() {
	case header.IPProtocolICMP:
		f.icmp, err = header.ParseICMPv4(ip.Payload())
	case header.IPProtocolUDP:
		if verified {
			f.udp, err = header.ParseUDPVerified(ip.Payload())
		} else {
			f.udp, err = header.ParseUDP(ip.Payload(), ip.Src(), ip.Dst())
		}
	case header.IPProtocolTCP:
		if verified {
			f.tcp, err = header.ParseTCPVerified(ip.Payload())
		} else {
			f.tcp, err = header.ParseTCP(ip.Payload(), ip.Src(), ip.Dst())
		}
	}
	return f, err
}

func sameView(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func sameFrame(a, b views) bool {
	return sameView(a.eth, b.eth) && sameView(a.arp, b.arp) && sameView(a.ip, b.ip) &&
		sameView(a.icmp, b.icmp) && sameView(a.udp, b.udp) && sameView(a.tcp, b.tcp)
}

// FuzzDecodeFrame checks that DecodeFrame and DecodeFrameVerified (with its
// inlined fast paths) agree exactly (same error, same views of the same
// bytes) with the chains of per-layer parsers, and that skipping verified
// checksums changes nothing on frames whose checksums are good.
func FuzzDecodeFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr header.Frame
		var err error
		parseUnchanged(t, b, func() { err = header.DecodeFrame(b, &fr) })
		want, wantErr := chain(b, false)
		if err != wantErr || !sameFrame(viewsOf(&fr), want) {
			t.Fatalf("DecodeFrame = %v, %+v; per-layer parsers = %v, %+v", err, fr, wantErr, want)
		}
		var fv header.Frame
		errV := header.DecodeFrameVerified(b, &fv, header.VerifiedIPv4|header.VerifiedL4)
		wantV, wantErrV := chain(b, true)
		if errV != wantErrV || !sameFrame(viewsOf(&fv), wantV) {
			t.Fatalf("DecodeFrameVerified = %v, %+v; per-layer parsers = %v, %+v", errV, fv, wantErrV, wantV)
		}
		if err == nil {
			var v header.Frame
			if err := header.DecodeFrameVerified(b, &v, header.VerifiedIPv4|header.VerifiedL4); err != nil || !sameFrame(viewsOf(&v), viewsOf(&fr)) {
				t.Fatalf("DecodeFrameVerified disagrees on a valid frame: %v", err)
			}
		}
		if fr.TCP() != nil {
			it := fr.TCP().Options()
			for _, ok := it.Next(); ok; _, ok = it.Next() {
			}
			if it.Err() != nil {
				t.Fatalf("decoded TCP has bad options: %v", it.Err())
			}
		}
	})
}

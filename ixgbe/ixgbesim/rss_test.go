package ixgbesim

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/verinic/verinic/ixgbe/regs"
)

// msKey is the key of Microsoft's RSS verification suite ("Verifying the
// RSS Hash Calculation"), also used by the 82599 datasheet's examples.
var msKey = mustHex("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// msVectors are the suite's IPv4 rows: destination and source address and
// port, the IPv4-only hash and the IPv4-with-TCP hash.
var msVectors = []struct {
	dst, src          string
	dport, sport      uint16
	ipv4, ipv4WithTCP uint32
}{
	{"161.142.100.80", "66.9.149.187", 1766, 2794, 0x323e8fc2, 0x51ccc178},
	{"65.69.140.83", "199.92.111.2", 4739, 14230, 0xd718262a, 0xc626b0ea},
	{"12.22.207.184", "24.19.198.95", 38024, 12898, 0xd2d0a5de, 0x5c2b394a},
	{"209.142.163.6", "38.27.205.30", 2217, 48228, 0x82989176, 0xafc7327f},
	{"202.188.127.2", "153.39.163.191", 1303, 44251, 0x5d1809c5, 0x10e828a2},
}

func TestToeplitzMicrosoftVectors(t *testing.T) {
	for _, v := range msVectors {
		src, dst := netip.MustParseAddr(v.src).As4(), netip.MustParseAddr(v.dst).As4()
		in := append(append([]byte{}, src[:]...), dst[:]...)
		if h := Toeplitz(msKey, in); h != v.ipv4 {
			t.Errorf("%s -> %s: IPv4 hash %#08x, want %#08x", v.src, v.dst, h, v.ipv4)
		}
		in = binary.BigEndian.AppendUint16(in, v.sport)
		in = binary.BigEndian.AppendUint16(in, v.dport)
		if h := Toeplitz(msKey, in); h != v.ipv4WithTCP {
			t.Errorf("%s:%d -> %s:%d: TCP hash %#08x, want %#08x", v.src, v.sport, v.dst, v.dport, h, v.ipv4WithTCP)
		}
		// Through the frame parser.
		f := ipv4Frame(v.src, v.dst, 6, v.sport, v.dport)
		if h, typ, ok := RSSHash(msKey, f, regs.MRQC_RSS_FIELD_IPV4_TCP|regs.MRQC_RSS_FIELD_IPV4); !ok || h != v.ipv4WithTCP || typ != RSSTypeTCPIPv4 {
			t.Errorf("RSSHash(TCP frame) = %#08x type %d ok %v, want %#08x", h, typ, ok, v.ipv4WithTCP)
		}
		if h, typ, ok := RSSHash(msKey, f, regs.MRQC_RSS_FIELD_IPV4); !ok || h != v.ipv4 || typ != RSSTypeIPv4 {
			t.Errorf("RSSHash(TCP frame, IPv4 only) = %#08x type %d, want %#08x", h, typ, v.ipv4)
		}
	}
}

// ipv4Frame builds an Ethernet/IPv4/L4 frame (no FCS) with 8 payload bytes.
func ipv4Frame(src, dst string, proto byte, sport, dport uint16) []byte {
	f := make([]byte, 14+20+20+8)
	copy(f[0:6], []byte{0x02, 0, 0, 0, 0, 1})
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 2})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-14))
	ip[8] = 64
	ip[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[20:], sport)
	binary.BigEndian.PutUint16(ip[22:], dport)
	return f
}

func TestRSSSpreadsOverQueues(t *testing.T) {
	const nq = 4
	n, d, _ := soloNIC(t, "rss", nq)
	for i := 0; i < regs.RSSKeySize/4; i++ {
		d.wr(regs.RSSRK(i), binary.LittleEndian.Uint32(msKey[4*i:]))
	}
	for i := 0; i < regs.RETAEntries/4; i++ {
		var v uint32
		for k := 0; k < 4; k++ {
			v |= uint32((4*i+k)%nq) << (8 * k)
		}
		d.wr(regs.RETA(i), v)
	}
	d.wr(regs.MRQC, regs.MRQC_RSSEN|regs.MRQC_RSS_FIELD_IPV4|regs.MRQC_RSS_FIELD_IPV4_TCP|regs.MRQC_RSS_FIELD_IPV4_UDP)
	d.wr(regs.RXCSUM, regs.RXCSUM_PCSD) // the write-back carries the RSS hash (8.2.3.7.5)
	if k := n.RSSKey(); string(k[:]) != string(msKey) {
		t.Fatal("RSSKey does not read back the programmed key")
	}
	perQueue := make([]int, nq)
	for i := 0; i < 200; i++ {
		f := ipv4Frame("10.0.0.1", "10.0.0.2", 17, uint16(1000+i), 53)
		copy(f[0:6], n.MAC())
		hash, typ, _ := RSSHash(msKey, f, n.Read32(regs.MRQC))
		want := int(hash&127) % nq
		if q := n.RSSQueue(f); q != want {
			t.Fatalf("frame %d: RSSQueue %d, want %d", i, q, want)
		}
		if typ != RSSTypeUDPIPv4 {
			t.Fatalf("RSS type %d", typ)
		}
		n.Receive(withFCS(f))
		n.Drain(0)
		// Exactly one queue got it, the predicted one, with the hash.
		for q := 0; q < nq; q++ {
			rq := &d.rx[q]
			desc := rq.desc(rq.next)
			if atomicLoad32(desc[regs.RXD_WB_STATUS_ERROR:])&regs.RXD_STAT_DD == 0 {
				continue
			}
			if q != want {
				t.Fatalf("frame %d landed on queue %d, want %d", i, q, want)
			}
			if h := atomicLoad32(desc[regs.RXD_WB_RSS:]); h != hash {
				t.Fatalf("write-back hash %#x, want %#x", h, hash)
			}
			if info := atomicLoad32(desc[regs.RXD_WB_PKT_INFO:]); info&0xF != RSSTypeUDPIPv4 || (info>>4)&(PtypeIPv4|PtypeUDP) != PtypeIPv4|PtypeUDP {
				t.Fatalf("pkt_info %#x", info)
			}
			perQueue[q] += len(d.recv(q))
		}
	}
	for q, c := range perQueue {
		if c < 20 {
			t.Errorf("queue %d got %d of 200 frames: RSS does not spread", q, c)
		}
	}
	// Non-IP frames go through hash 0: RETA[0] = queue 0.
	n.Receive(withFCS(testFrame(n.MAC(), n.MAC(), 64, 1)))
	n.Drain(0)
	if got := d.recv(0); len(got) != 1 {
		t.Errorf("non-IP frame: %d frames on queue 0", len(got))
	}
}

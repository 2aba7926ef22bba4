package ixgbesim

import (
	"encoding/binary"
	"testing"

	"github.com/verinic/verinic/ixgbe/regs"
)

// refCsum is a bytewise RFC 1071 checksum, independent of csum.go's sum.
func refCsum(parts ...[]byte) uint16 {
	var s uint32
	for _, p := range parts {
		for i := 0; i < len(p); i += 2 {
			w := uint32(p[i]) << 8
			if i+1 < len(p) {
				w |= uint32(p[i+1])
			}
			s += w
		}
	}
	for s>>16 != 0 {
		s = s&0xFFFF + s>>16
	}
	return ^uint16(s)
}

// csFrame describes a test frame for the checksum engine.
type csFrame struct {
	vlan     bool   // an 802.1Q tag before the IPv4 header
	opts     int    // IPv4 option bytes (multiple of 4)
	proto    byte   // 6 TCP, 17 UDP, other
	frag     uint16 // IPv4 flags/fragment offset field (0x2000 MF, offset in 8-byte units)
	payload  int
	badIP    bool
	badL4    bool
	udpZero  bool // UDP checksum field 0 (none)
	ipID     uint16
	ipv6     bool
	nonIP    bool
	padTo    int // pad the frame (Ethernet padding beyond the IP total length)
	truncTot bool
}

func (c csFrame) build(dst []byte) []byte {
	l4len := 20
	if c.proto == 17 {
		l4len = 8
	}
	eth := 14
	if c.vlan {
		eth = 18
	}
	ihl := 20 + c.opts
	if c.ipv6 {
		ihl = 40
	}
	f := make([]byte, eth+ihl+l4len+c.payload)
	copy(f[0:6], dst)
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 7})
	et := f[12:]
	if c.vlan {
		binary.BigEndian.PutUint16(f[12:], 0x8100)
		binary.BigEndian.PutUint16(f[14:], 0x2005) // PCP 1, VID 5
		et = f[16:]
	}
	ip := f[eth:]
	l4 := ip[ihl:]
	for i := range l4 {
		l4[i] = byte(i*7 + 3)
	}
	switch {
	case c.nonIP:
		binary.BigEndian.PutUint16(et, 0x88B5)
		return pad(f, c.padTo)
	case c.ipv6:
		binary.BigEndian.PutUint16(et, 0x86DD)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6], ip[7] = c.proto, 64
		for i := 8; i < 40; i++ {
			ip[i] = byte(i)
		}
	default:
		binary.BigEndian.PutUint16(et, 0x0800)
		ip[0] = 0x40 | byte(ihl/4)
		binary.BigEndian.PutUint16(ip[2:], uint16(ihl+len(l4)))
		binary.BigEndian.PutUint16(ip[4:], c.ipID)
		binary.BigEndian.PutUint16(ip[6:], c.frag)
		ip[8], ip[9] = 64, c.proto
		copy(ip[12:20], []byte{10, 0, 0, 1, 10, 0, 0, 2})
		for i := 20; i < ihl; i++ {
			ip[i] = 1 // NOP options
		}
	}
	var ph []byte
	if c.ipv6 {
		ph = append(append([]byte(nil), ip[8:40]...), 0, 0, byte(len(l4)>>8), byte(len(l4)), 0, 0, 0, c.proto)
	} else {
		ph = append(append([]byte(nil), ip[12:20]...), 0, c.proto, byte(len(l4)>>8), byte(len(l4)))
	}
	switch c.proto {
	case 6:
		l4[12] = 5 << 4
		l4[16], l4[17] = 0, 0
		binary.BigEndian.PutUint16(l4[16:], refCsum(ph, l4))
		if c.badL4 {
			l4[16] ^= 0x40
		}
	case 17:
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		l4[6], l4[7] = 0, 0
		if !c.udpZero {
			s := refCsum(ph, l4)
			if s == 0 {
				s = 0xFFFF
			}
			binary.BigEndian.PutUint16(l4[6:], s)
			if c.badL4 {
				l4[len(l4)-1] ^= 0x10 // a payload byte changed in flight
			}
		}
	}
	if !c.ipv6 {
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], refCsum(ip[:ihl]))
		if c.badIP {
			ip[11] ^= 1
		}
		if c.truncTot {
			binary.BigEndian.PutUint16(ip[2:], uint16(ihl+len(l4)+100))
		}
	}
	return pad(f, c.padTo)
}

func pad(f []byte, n int) []byte {
	for len(f) < n {
		f = append(f, 0xEE) // padding that must not enter any sum
	}
	return f
}

// rxOne receives frame (FCS appended) on queue 0 and returns the
// write-back status word and second dword.
func rxOne(t *testing.T, n *NIC, d *tDriver, frame []byte) (status, dw1 uint32) {
	t.Helper()
	if !n.Receive(withFCS(frame)) {
		t.Fatal("frame refused")
	}
	n.Drain(0)
	rq := &d.rx[0]
	desc := rq.desc(rq.next)
	status = atomicLoad32(desc[regs.RXD_WB_STATUS_ERROR:])
	dw1 = atomicLoad32(desc[regs.RXD_WB_RSS:])
	if status&regs.RXD_STAT_DD == 0 {
		t.Fatal("no write-back")
	}
	if got := d.recv(0); len(got) != 1 {
		t.Fatalf("received %d frames", len(got))
	}
	return status, dw1
}

func TestRxChecksumOffload(t *testing.T) {
	n, d, _ := soloNIC(t, "rxcsum", 1)
	const (
		ipcs  = regs.RXD_STAT_IPCS
		l4cs  = regs.RXD_STAT_L4CS
		udpcs = regs.RXD_STAT_UDPCS
		ipe   = regs.RXD_ERR_IPE
		tcpe  = regs.RXD_ERR_TCPE
	)
	cases := []struct {
		name string
		f    csFrame
		want uint32
	}{
		{"tcp good", csFrame{proto: 6, payload: 100}, ipcs | l4cs},
		{"tcp bad l4", csFrame{proto: 6, payload: 100, badL4: true}, ipcs | l4cs | tcpe},
		{"tcp bad ip", csFrame{proto: 6, payload: 100, badIP: true}, ipcs | l4cs | ipe},
		{"tcp bad both", csFrame{proto: 6, payload: 33, badIP: true, badL4: true}, ipcs | l4cs | ipe | tcpe},
		{"udp good", csFrame{proto: 17, payload: 51}, ipcs | l4cs | udpcs},
		{"udp bad", csFrame{proto: 17, payload: 51, badL4: true}, ipcs | l4cs | udpcs | tcpe},
		{"udp zero checksum", csFrame{proto: 17, payload: 40, udpZero: true}, ipcs},
		{"udp short, padded", csFrame{proto: 17, payload: 3, padTo: 60}, ipcs | l4cs | udpcs},
		{"tcp short, padded, bad", csFrame{proto: 6, payload: 1, padTo: 60, badL4: true}, ipcs | l4cs | tcpe},
		{"ip options good", csFrame{proto: 6, opts: 12, payload: 64}, ipcs | l4cs},
		{"ip options bad ip", csFrame{proto: 17, opts: 8, payload: 64, badIP: true}, ipcs | l4cs | udpcs | ipe},
		{"vlan tcp good", csFrame{vlan: true, proto: 6, payload: 80}, ipcs | l4cs},
		{"vlan udp bad", csFrame{vlan: true, proto: 17, payload: 80, badL4: true}, ipcs | l4cs | udpcs | tcpe},
		{"vlan bad ip", csFrame{vlan: true, proto: 6, payload: 80, badIP: true}, ipcs | l4cs | ipe},
		{"first fragment (MF)", csFrame{proto: 17, frag: 0x2000, payload: 64, badL4: true}, ipcs},
		{"later fragment", csFrame{proto: 6, frag: 0x0010, payload: 64, badL4: true}, ipcs},
		{"fragment bad ip", csFrame{proto: 6, frag: 0x2010, payload: 64, badIP: true}, ipcs | ipe},
		{"icmp", csFrame{proto: 1, payload: 56}, ipcs},
		{"non-ip", csFrame{nonIP: true, payload: 60}, 0},
		{"ip total length beyond frame", csFrame{proto: 6, payload: 60, truncTot: true}, 0},
		{"ipv6 tcp good", csFrame{ipv6: true, proto: 6, payload: 60}, l4cs},
		{"ipv6 udp bad", csFrame{ipv6: true, proto: 17, payload: 60, badL4: true}, l4cs | udpcs | tcpe},
	}
	for _, c := range cases {
		st, _ := rxOne(t, n, d, c.f.build(n.MAC()))
		if got := st & regs.RXD_CSUM_BITS; got != c.want {
			t.Errorf("%s: checksum bits %#x, want %#x", c.name, got, c.want)
		}
	}
}

// TestRxFragmentChecksumVsRSS checks the write-back's second dword per
// RXCSUM.PCSD: the RSS hash when set; IP ID and the fragment checksum over
// the IP payload (IPPCSE) when clear (8.2.3.7.5, 7.1.6.2).
func TestRxFragmentChecksumVsRSS(t *testing.T) {
	n, d, _ := soloNIC(t, "pcsd", 1)
	for i := 0; i < regs.RSSKeySize/4; i++ {
		d.wr(regs.RSSRK(i), binary.LittleEndian.Uint32(msKey[4*i:]))
	}
	d.wr(regs.MRQC, regs.MRQC_RSSEN|regs.MRQC_RSS_FIELD_IPV4|regs.MRQC_RSS_FIELD_IPV4_UDP)
	f := csFrame{proto: 17, frag: 0x2000, payload: 77, ipID: 0xBEEF}.build(n.MAC())
	hash, _, _ := RSSHash(msKey, f, n.Read32(regs.MRQC))
	if hash == 0 {
		t.Fatal("zero hash: the test cannot tell the fields apart")
	}
	// The fragment checksum: the sum (not complemented) of the IP payload.
	payload := f[14+20:]
	wantFrag := ^refCsum(payload)

	d.wr(regs.RXCSUM, regs.RXCSUM_PCSD|regs.RXCSUM_IPPCSE)
	if _, dw := rxOne(t, n, d, f); dw != hash {
		t.Errorf("PCSD set: dword %#x, want the RSS hash %#x", dw, hash)
	}
	d.wr(regs.RXCSUM, regs.RXCSUM_IPPCSE)
	if _, dw := rxOne(t, n, d, f); dw != uint32(wantFrag)<<16|0xBEEF {
		t.Errorf("PCSD clear, IPPCSE set: dword %#x, want %#x", dw, uint32(wantFrag)<<16|0xBEEF)
	}
	d.wr(regs.RXCSUM, 0)
	if _, dw := rxOne(t, n, d, f); dw != 0xBEEF {
		t.Errorf("PCSD and IPPCSE clear: dword %#x, want IP ID only %#x", dw, 0xBEEF)
	}
}

// TestRxLegacyChecksumBits: the legacy write-back carries the same result
// in its status and errors bytes (7.1.5).
func TestRxLegacyStatusMapping(t *testing.T) {
	st := legacyStatus(regs.RXD_STAT_DD | regs.RXD_STAT_EOP | regs.RXD_STAT_IPCS | regs.RXD_STAT_L4CS | regs.RXD_ERR_IPE | regs.RXD_ERR_TCPE)
	if st != 0x63|0x60<<8 {
		t.Fatalf("legacy status %#x", st)
	}
}

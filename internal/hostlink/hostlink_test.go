//go:build linux

package hostlink

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/header"
)

// Frames used by the tests: the simulated side is 02:00:00:00:00:02 at .2;
// the kernel side is the namespace's interface at .1.
var simMAC = header.MAC{0x02, 0, 0, 0, 0, 0x02}

// recorder is a Receiver that keeps copies of the frames it gets and can
// answer them (acting as the NIC plus a minimal stack).
type recorder struct {
	mu     sync.Mutex
	frames [][]byte
	notify chan struct{}
	answer func(frame []byte) // called with the frame, FCS included
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) Receive(frame []byte) bool {
	r.mu.Lock()
	r.frames = append(r.frames, append([]byte(nil), frame...))
	answer := r.answer
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	if answer != nil {
		answer(frame)
	}
	return true
}

// waitFor returns the first frame (FCS included) that match accepts.
func (r *recorder) waitFor(t *testing.T, what string, match func(f header.Frame) bool) []byte {
	t.Helper()
	deadline := time.After(10 * time.Second)
	seen := 0
	for {
		r.mu.Lock()
		frames := r.frames[seen:]
		seen = len(r.frames)
		r.mu.Unlock()
		for _, fr := range frames {
			var f header.Frame
			if header.DecodeFrame(fr[:len(fr)-4], &f) == nil && match(f) {
				return fr
			}
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("no %s arrived within 10 s (%d frames seen)", what, seen)
		}
	}
}

func (r *recorder) count(match func(fr []byte) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, fr := range r.frames {
		if match(fr) {
			n++
		}
	}
	return n
}

func newNetns(t *testing.T) *Netns {
	t.Helper()
	if err := CheckNetns(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	n, err := NewNetns("verinic-hostlink")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

func mustIP(t *testing.T, n *Netns, args ...string) {
	t.Helper()
	if _, err := n.IP(args...); err != nil {
		t.Fatal(err)
	}
}

// udpFrame builds a UDP/IPv4/Ethernet frame (without FCS).
func udpFrame(dstMAC, srcMAC header.MAC, src, dst header.IPv4Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 14+20+8+len(payload))
	copy(b[42:], payload)
	header.EncodeUDP(b[34:], sport, dport, len(payload), src, dst)
	header.EncodeIPv4(b[14:], header.IPv4Fields{TotalLen: uint16(28 + len(payload)), TTL: 64, Protocol: header.IPProtocolUDP, Src: src, Dst: dst, ID: 7})
	header.EncodeEthernet(b, dstMAC, srcMAC, header.EtherTypeIPv4)
	return b
}

// kernelSocket opens a UDP socket inside the namespace.
func kernelSocket(t *testing.T, n *Netns, addr string) *net.UDPConn {
	t.Helper()
	var c net.PacketConn
	if err := n.Do(func() (err error) { c, err = net.ListenPacket("udp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

func interfaceMAC(t *testing.T, n *Netns, ifname string) header.MAC {
	t.Helper()
	var mac header.MAC
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		copy(mac[:], ifi.HardwareAddr)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

type link interface {
	Transmit([]byte)
	Up() bool
	Stats() Stats
	Close() error
}

// exerciseLink checks both directions of a link whose kernel side is ifname
// at kernelIP in namespace n (the simulated side is simIP, with a static
// neighbour entry so that the kernel need not resolve it).
func exerciseLink(t *testing.T, n *Netns, l link, rec *recorder, ifname string, kernelIP, simIP header.IPv4Addr) {
	mustIP(t, n, "neigh", "replace", simIP.String(), "lladdr", simMAC.String(), "dev", ifname)
	kernelMAC := interfaceMAC(t, n, ifname)
	sock := kernelSocket(t, n, kernelIP.String()+":0")
	kport := uint16(sock.LocalAddr().(*net.UDPAddr).Port)

	// Kernel → link: a short datagram, padded to 60 bytes plus FCS.
	if _, err := sock.WriteToUDP([]byte("from the kernel"), &net.UDPAddr{IP: simIP[:], Port: 9999}); err != nil {
		t.Fatal(err)
	}
	fr := rec.waitFor(t, "UDP datagram from the kernel", func(f header.Frame) bool {
		return f.UDP() != nil && f.UDP().DstPort() == 9999
	})
	if len(fr) != 64 || !CheckFCS(fr) {
		t.Fatalf("frame of %d bytes, FCS ok %v; want 60 + 4 with a valid FCS", len(fr), CheckFCS(fr))
	}
	var f header.Frame
	if err := header.DecodeFrame(fr[:60], &f); err != nil || string(f.UDP().Payload()) != "from the kernel" ||
		f.Ethernet().Src() != kernelMAC || f.Ethernet().Dst() != simMAC || f.IPv4().Src() != kernelIP {
		t.Fatalf("kernel frame wrong (%v): % x", err, fr)
	}
	if l.Stats().RxPadded == 0 {
		t.Errorf("RxPadded not counted")
	}

	// Link → kernel: a datagram the kernel delivers to the socket.
	out := AppendFCS(udpFrame(kernelMAC, simMAC, simIP, kernelIP, 9999, kport, []byte("from the simulated NIC")))
	l.Transmit(out)
	buf := make([]byte, 2048)
	sock.SetReadDeadline(time.Now().Add(10 * time.Second))
	nr, from, err := sock.ReadFromUDP(buf)
	if err != nil || string(buf[:nr]) != "from the simulated NIC" || !from.IP.Equal(net.IP(simIP[:])) || from.Port != 9999 {
		t.Fatalf("kernel socket read %q from %v: %v", buf[:nr], from, err)
	}

	// A frame with a bad FCS is dropped before the kernel sees it.
	bad := AppendFCS(udpFrame(kernelMAC, simMAC, simIP, kernelIP, 9999, kport, []byte("corrupted")))
	bad[len(bad)-1] ^= 0xff
	before := l.Stats()
	l.Transmit(bad)
	l.Transmit(bad[:10]) // a runt
	sock.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if nr, _, err := sock.ReadFromUDP(buf); err == nil {
		t.Fatalf("kernel received %q despite a bad FCS", buf[:nr])
	}
	st := l.Stats()
	if st.TxBadFCS != before.TxBadFCS+1 || st.TxRunts != before.TxRunts+1 || st.TxFrames != before.TxFrames {
		t.Fatalf("stats after bad frames: %+v (before %+v)", st, before)
	}
	// Our own transmissions never come back to the receiver.
	if n := rec.count(func(fr []byte) bool { return bytes.Equal(fr[6:12], simMAC[:]) }); n != 0 {
		t.Fatalf("%d of our own frames were delivered back to the receiver", n)
	}
	if !l.Up() {
		t.Fatal("link down while open")
	}
	if st := l.Stats(); st.RxCsumNotReady != 0 {
		t.Fatalf("frames with unfinished checksums: %+v", st)
	}
}

func closeLink(t *testing.T, l link) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: the reader goroutine is stuck")
	}
	if l.Up() {
		t.Fatal("link up after Close")
	}
	before := l.Stats().TxErrors
	l.Transmit(AppendFCS(make([]byte, 60)))
	if l.Stats().TxErrors != before+1 {
		t.Fatal("Transmit after Close not counted as an error")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestLinuxTAPFrames(t *testing.T) {
	n := newNetns(t)
	rec := newRecorder()
	tap, err := n.OpenTAP("vtap0", rec)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	if tap.Name() != "vtap0" {
		t.Fatalf("name %q", tap.Name())
	}
	mustIP(t, n, "addr", "add", "10.201.0.1/24", "dev", "vtap0")
	mustIP(t, n, "link", "set", "vtap0", "up")
	exerciseLink(t, n, tap, rec, "vtap0", header.IPv4Addr{10, 201, 0, 1}, header.IPv4Addr{10, 201, 0, 2})
	closeLink(t, tap)
	select {
	case <-tap.done:
	default:
		t.Fatal("reader goroutine still running after Close")
	}
}

func TestLinuxVethFrames(t *testing.T) {
	n := newNetns(t)
	if err := n.AddVeth("vk0", "vs0"); err != nil {
		t.Fatal(err)
	}
	mustIP(t, n, "addr", "add", "10.202.0.1/24", "dev", "vk0")
	if err := n.DisableOffloads("vk0"); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	raw, err := n.OpenRaw("vs0", rec)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exerciseLink(t, n, raw, rec, "vk0", header.IPv4Addr{10, 202, 0, 1}, header.IPv4Addr{10, 202, 0, 2})
	closeLink(t, raw)
	select {
	case <-raw.done:
	default:
		t.Fatal("reader goroutine still running after Close")
	}
}

// responder answers ARP requests for ip and ICMP echo requests to it, as a
// NIC plus a minimal stack would, through l.
func responder(l interface{ Transmit([]byte) }, mac header.MAC, ip header.IPv4Addr) func([]byte) {
	return func(fr []byte) {
		var f header.Frame
		if header.DecodeFrame(fr[:len(fr)-4], &f) != nil {
			return
		}
		out := make([]byte, 0, 1600)
		switch {
		case f.ARP() != nil && f.ARP().Op() == header.ARPRequest && f.ARP().TargetIP() == ip:
			out = out[:42]
			header.EncodeEthernet(out, f.ARP().SenderMAC(), mac, header.EtherTypeARP)
			header.EncodeARP(out[14:], header.ARPReply, mac, ip, f.ARP().SenderMAC(), f.ARP().SenderIP())
		case f.ICMPv4() != nil && f.ICMPv4().Type() == header.ICMPv4Echo && f.IPv4().Dst() == ip:
			data := f.ICMPv4().Payload()
			out = out[:34+8+len(data)]
			copy(out[42:], data)
			header.EncodeICMPv4Echo(out[34:], header.ICMPv4EchoReply, f.ICMPv4().Ident(), f.ICMPv4().Seq(), len(data))
			header.EncodeIPv4(out[14:], header.IPv4Fields{TotalLen: uint16(28 + len(data)), TTL: 64, Protocol: header.IPProtocolICMP, Src: ip, Dst: f.IPv4().Src()})
			header.EncodeEthernet(out, f.Ethernet().Src(), mac, header.EtherTypeIPv4)
		default:
			return
		}
		l.Transmit(AppendFCS(out))
	}
}

// TestLinuxTAPPing has the kernel ping an address behind the TAP device: it
// resolves it with ARP and sends echo requests, which a responder on the
// link answers. Both directions and the kernel's own checks of our frames
// (FCS stripped, checksums right) are exercised by a standard tool.
func TestLinuxTAPPing(t *testing.T) {
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("skipping: ping not installed (iputils-ping)")
	}
	n := newNetns(t)
	rec := newRecorder()
	tap, err := n.OpenTAP("vtap1", rec)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLink(t, tap)
	rec.mu.Lock()
	rec.answer = responder(tap, simMAC, header.IPv4Addr{10, 203, 0, 2})
	rec.mu.Unlock()
	mustIP(t, n, "addr", "add", "10.203.0.1/24", "dev", "vtap1")
	mustIP(t, n, "link", "set", "vtap1", "up")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := n.Exec(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.203.0.2")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("3 received")) {
		t.Fatalf("ping output:\n%s", out)
	}
	st := tap.Stats()
	if st.TxFrames < 4 || st.RxFrames < 4 || st.TxBadFCS != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFCS(t *testing.T) {
	// IEEE 802.3 CRC-32 check value: "123456789" → 0xCBF43926, sent least
	// significant byte first.
	f := AppendFCS([]byte("123456789"))
	if len(f) != 64 {
		t.Fatalf("padded length %d", len(f))
	}
	g := append([]byte("123456789"), make([]byte, 51)...)
	if !bytes.Equal(f[:60], g) || !CheckFCS(f) {
		t.Fatal("padding or FCS wrong")
	}
	long := bytes.Repeat([]byte{0xa5}, 100)
	l := AppendFCS(append([]byte(nil), long...))
	if len(l) != 104 || !CheckFCS(l) {
		t.Fatal("FCS of a long frame")
	}
	l[50] ^= 1
	if CheckFCS(l) {
		t.Fatal("corruption not detected")
	}
	if CheckFCS([]byte{1, 2}) {
		t.Fatal("short frame accepted")
	}
	var c counters
	if _, ok := strip(&c, AppendFCS([]byte("123456789"))); !ok {
		t.Fatal("strip rejected a good frame")
	}
	check := AppendFCS(nil)[60:] // FCS of 60 zero bytes
	if len(check) != 4 {
		t.Fatal("FCS length")
	}
}

func TestCRCCheckValue(t *testing.T) {
	// Without padding: compute through deliver's path on a 60+ byte frame.
	frame := bytes.Repeat([]byte("123456789"), 7) // 63 bytes: no padding
	buf := make([]byte, 128)
	copy(buf, frame)
	var got []byte
	var c counters
	deliver(&c, ReceiverFunc(func(f []byte) bool { got = append([]byte(nil), f...); return false }), buf, len(frame))
	if len(got) != 67 || !CheckFCS(got) || !bytes.Equal(got[:63], frame) {
		t.Fatalf("delivered % x", got)
	}
	if s := c.snapshot(); s.RxFrames != 1 || s.RxRefused != 1 || s.RxPadded != 0 || s.RxBytes != 67 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := OpenTAP("x", nil); err == nil {
		t.Fatal("nil receiver accepted")
	}
	if _, err := OpenRaw("verinic-no-such-if", newRecorder()); err == nil {
		t.Fatal("missing interface accepted")
	}
	if _, err := OpenTAP("a-name-longer-than-fifteen", newRecorder()); err == nil {
		t.Fatal("overlong name accepted")
	} else if errors.Is(err, nil) {
		t.Fatal("no error")
	}
}

// Deleting the TAP interface under an open link makes every read fail; the
// reader must pace itself rather than spin, and Close must still return.
func TestLinuxTAPDeletedUnderLink(t *testing.T) {
	n := newNetns(t)
	tap, err := n.OpenTAP("vtap3", newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	mustIP(t, n, "link", "set", "vtap3", "up")
	mustIP(t, n, "link", "del", "vtap3")
	time.Sleep(300 * time.Millisecond)
	t.Logf("read errors: %d", tap.Stats().RxErrors)
	if e := tap.Stats().RxErrors; e > 50 {
		t.Fatalf("%d read errors in 300 ms: the reader spins", e)
	}
	closeLink(t, tap)
}

// A tagged frame crossing a veth reaches AF_PACKET with its 802.1Q tag
// taken out (the receive path untags into metadata whether or not the 8021q
// module is loaded); the link must put it back, as the wire carries it. The
// tagged frame is injected on the other end by a second Raw link.
func TestLinuxVethVLANTag(t *testing.T) {
	n := newNetns(t)
	if err := n.AddVeth("vk2", "vs2"); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	raw, err := n.OpenRaw("vs2", rec)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLink(t, raw)
	inject, err := n.OpenRaw("vk2", newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	defer closeLink(t, inject)
	untagged := udpFrame(simMAC, header.MAC{0x02, 0, 0, 0, 0, 0x01}, header.IPv4Addr{10, 205, 0, 1}, header.IPv4Addr{10, 205, 0, 2}, 1, 9999, []byte("tagged"))
	tagged := make([]byte, len(untagged)+4)
	copy(tagged, untagged[:12])
	header.EncodeEthernetVLAN(tagged, simMAC, header.MAC{0x02, 0, 0, 0, 0, 0x01}, 0x2005, header.EtherTypeIPv4) // PCP 1, VID 5
	copy(tagged[18:], untagged[14:])
	inject.Transmit(AppendFCS(tagged))
	fr := rec.waitFor(t, "tagged UDP datagram", func(f header.Frame) bool { return f.UDP() != nil && f.UDP().DstPort() == 9999 })
	want := AppendFCS(append([]byte(nil), tagged...))
	if !bytes.Equal(fr, want) {
		t.Fatalf("frame differs from what was sent (tag lost?):\n got % x\nwant % x", fr, want)
	}
}

// With the kernel side's transmit checksum offload left on, AF_PACKET sees
// frames with unfinished checksums; the link counts them, which is how a
// user learns to call DisableOffloads.
func TestLinuxVethCountsUnfinishedChecksums(t *testing.T) {
	n := newNetns(t)
	if err := n.AddVeth("vk3", "vs3"); err != nil {
		t.Fatal(err)
	}
	mustIP(t, n, "addr", "add", "10.206.0.1/24", "dev", "vk3")
	rec := newRecorder()
	raw, err := n.OpenRaw("vs3", rec)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLink(t, raw)
	mustIP(t, n, "neigh", "replace", "10.206.0.2", "lladdr", simMAC.String(), "dev", "vk3")
	sock := kernelSocket(t, n, "10.206.0.1:0")
	if _, err := sock.WriteToUDP([]byte("offloaded"), &net.UDPAddr{IP: net.IPv4(10, 206, 0, 2), Port: 9999}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for raw.Stats().RxCsumNotReady == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := raw.Stats(); st.RxCsumNotReady == 0 {
		t.Fatalf("no unfinished checksum counted: %+v", st)
	}
}

//go:build linux

package linuxtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/hostlink"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/link"
	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/link/pcaplink"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
	"github.com/verinic/verinic/trace/pcap"
)

// peer is a stack on a simulated NIC wired to the kernel of a private
// namespace.
type peer struct {
	ns       *hostlink.Netns
	st       *stack.Stack
	sim      *ixgbesim.NIC
	drv      *ixgbe.NIC
	pcap     *pcaplink.Link
	pcapPath string
	pcapFile *os.File
	closeLnk func() error
	ifname   string        // the kernel's interface
	tcp      *tcp.Protocol // TCP on the stack, when the peer carries it
	kernelIP netip.Addr
	stackIP  netip.Addr
	mac      net.HardwareAddr
	closed   bool
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for network namespaces, TAP and AF_PACKET (CI runs these as root)")
	}
	if err := hostlink.CheckNetns(); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

func requireTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("skipping: %s not installed (apt-get install -y %s)", name, pkg)
	}
}

// peerOptions configures newPeerWith.
type peerOptions struct {
	// TCP, when set, adds TCP with this configuration to the stack
	// before it starts (peer.tcp).
	TCP *tcp.Config
	// NoPcap leaves the capture out (bulk transfers of hundreds of MB).
	NoPcap bool
}

// newPeer builds the topology: kind "tap" or "veth".
func newPeer(t testing.TB, kind string, subnet int) *peer {
	return newPeerWith(t, kind, subnet, peerOptions{})
}

// newPeerWith is newPeer with options.
func newPeerWith(t testing.TB, kind string, subnet int, opt peerOptions) *peer {
	requireRoot(t)
	if kind == "tap" {
		if _, err := os.Stat("/dev/net/tun"); err != nil {
			t.Skipf("skipping: /dev/net/tun absent (modprobe tun): %v", err)
		}
	}
	ns, err := hostlink.NewNetns("verinic-stack")
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	p := &peer{ns: ns, kernelIP: netip.AddrFrom4([4]byte{10, 9, byte(subnet), 1}), stackIP: netip.AddrFrom4([4]byte{10, 9, byte(subnet), 2})}
	t.Cleanup(func() { p.close(t); ns.Close() })

	p.sim, err = ixgbesim.New(ixgbesim.Config{Name: "lx" + kind, Mode: ixgbesim.FreeRunning, Policy: dma.NoHugepages})
	if err != nil {
		t.Fatal(err)
	}
	mustIP := func(args ...string) {
		if out, err := ns.IP(args...); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	switch kind {
	case "tap":
		p.ifname = "vtap0"
		tap, err := ns.OpenTAP(p.ifname, p.sim)
		if err != nil {
			t.Fatal(err)
		}
		p.sim.Attach(tap)
		p.closeLnk = tap.Close
	case "veth":
		p.ifname = "vk0"
		if err := ns.AddVeth("vk0", "vs0"); err != nil {
			t.Fatal(err)
		}
		if err := ns.DisableOffloads("vs0"); err != nil {
			t.Fatal(err)
		}
		raw, err := ns.OpenRaw("vs0", p.sim)
		if err != nil {
			t.Fatal(err)
		}
		p.sim.Attach(raw)
		p.closeLnk = raw.Close
	}
	// Without offloads the kernel fills in every checksum itself, so what
	// reaches the stack (and the pcap) is what a real wire carries.
	if err := ns.DisableOffloads(p.ifname); err != nil {
		t.Fatal(err)
	}
	mustIP("addr", "add", p.kernelIP.String()+"/24", "dev", p.ifname)
	mustIP("link", "set", p.ifname, "up")
	p.sim.Start()
	p.drv, err = ixgbe.New(p.sim, ixgbe.Config{Mempool: dma.MempoolConfig{Buffers: 2048}})
	if err != nil {
		t.Fatalf("driver: %v", err)
	}
	p.mac = p.drv.MAC()
	var lnk link.Link = p.drv
	if !opt.NoPcap {
		p.pcapPath = filepath.Join(t.TempDir(), kind+".pcap")
		if p.pcapFile, err = os.Create(p.pcapPath); err != nil {
			t.Fatal(err)
		}
		if p.pcap, err = pcaplink.Wrap(p.drv, p.pcapFile); err != nil {
			t.Fatal(err)
		}
		lnk = p.pcap
	}
	p.st = stack.New(stack.Config{})
	if _, err := p.st.AddNIC(lnk, stack.NICConfig{Name: kind}); err != nil {
		t.Fatal(err)
	}
	if err := p.st.AddAddress(1, netip.PrefixFrom(p.stackIP, 24)); err != nil {
		t.Fatal(err)
	}
	if opt.TCP != nil {
		if p.tcp, err = tcp.New(p.st, *opt.TCP); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.st.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *peer) close(t testing.TB) {
	if p.closed {
		return
	}
	p.closed = true
	if p.st != nil {
		p.st.Close()
	}
	if p.drv != nil {
		p.drv.Close()
	}
	if p.sim != nil {
		p.sim.Stop()
		p.sim.Close()
	}
	if p.closeLnk != nil {
		p.closeLnk()
	}
	if p.pcap != nil {
		if err := p.pcap.Flush(); err != nil {
			t.Errorf("pcap: %v", err)
		}
		p.pcapFile.Close()
		keepCapture(t, p.pcapPath)
	}
}

// keepCapture copies a capture (or a trace) into $LINUXTEST_KEEP_DIR, when
// set, so that it outlives the test's temporary directory (for tshark or
// nicctl verify by hand).
func keepCapture(t testing.TB, path string) {
	dir := os.Getenv("LINUXTEST_KEEP_DIR")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err == nil {
		dst := filepath.Join(dir, strings.NewReplacer("/", "_").Replace(t.Name())+"-"+filepath.Base(path))
		if err = os.WriteFile(dst, b, 0o644); err == nil {
			t.Logf("capture kept at %s", dst)
		}
	}
	if err != nil {
		t.Logf("keeping %s: %v", path, err)
	}
}

// exec runs a command inside the namespace.
func (p *peer) exec(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := p.ns.Exec(ctx, name, args...)
	return string(out), err
}

// kernelUDP opens a kernel UDP socket inside the namespace.
func (p *peer) kernelUDP(t *testing.T, laddr, raddr *net.UDPAddr) *net.UDPConn {
	var c *net.UDPConn
	err := p.ns.Do(func() (err error) {
		if raddr != nil {
			c, err = net.DialUDP("udp4", laddr, raddr)
		} else {
			c, err = net.ListenUDP("udp4", laddr)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func (p *peer) testAll(t *testing.T) {
	// The stack answers the UDP echo port for the tests below.
	echoSrv, err := p.st.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer echoSrv.Close()
	go func() {
		buf := make([]byte, 70000)
		for {
			n, from, err := echoSrv.ReadFrom(buf)
			if err != nil {
				return
			}
			echoSrv.WriteTo(buf[:n], from)
		}
	}()

	t.Run("LinuxPingsStack", func(t *testing.T) {
		requireTool(t, "ping", "iputils-ping")
		for _, size := range []string{"56", "1472", "8000"} {
			out, err := p.exec(t, 20*time.Second, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", size, p.stackIP.String())
			m := pingStats.FindStringSubmatch(out)
			if err != nil || m == nil || m[1] != "3" || m[2] != "3" {
				t.Fatalf("ping -s %s: %v\n%s\nstack counters: %v", size, err, out, nonZero(p.st.Counters()))
			}
		}
	})

	t.Run("StackPingsLinux", func(t *testing.T) {
		echo, err := p.st.NewEcho(0)
		if err != nil {
			t.Fatal(err)
		}
		defer echo.Close()
		buf := make([]byte, 70000)
		for seq, size := range []int{56, 1472, 1473, 8000} {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i + seq)
			}
			if err := echo.Send(p.kernelIP, uint16(seq), data); err != nil {
				t.Fatal(err)
			}
			echo.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, r, err := echo.Recv(buf)
			if err != nil || r.From != p.kernelIP || r.Seq != uint16(seq) || !bytes.Equal(buf[:n], data) {
				t.Fatalf("%d-byte ping to Linux: reply seq %d from %v, %d bytes, err %v", size, r.Seq, r.From, n, err)
			}
		}
	})

	t.Run("ArpingResolvesStack", func(t *testing.T) {
		requireTool(t, "arping", "arping")
		out, err := p.exec(t, 15*time.Second, "arping", "-c", "2", "-w", "5", "-I", p.ifname, p.stackIP.String())
		if err != nil || !strings.Contains(strings.ToLower(out), strings.ToLower(p.mac.String())) {
			t.Fatalf("arping: %v\n%s", err, out)
		}
	})

	sizes := []int{1, 2, 7, 8, 100, 1471, 1472, 1473, 1480, 2000, 2952, 2953, 4000, 7999, 8000}
	t.Run("UDPFromLinux", func(t *testing.T) {
		c := p.kernelUDP(t, nil, &net.UDPAddr{IP: p.stackIP.AsSlice(), Port: 7})
		buf := make([]byte, 70000)
		for _, size := range sizes {
			msg := randomBytes(size)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, err := c.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("%d bytes from Linux: echo of %d bytes, err %v (stack: %v)", size, n, err, nonZero(p.st.Counters()))
			}
		}
	})

	t.Run("UDPToLinux", func(t *testing.T) {
		k := p.kernelUDP(t, &net.UDPAddr{IP: p.kernelIP.AsSlice(), Port: 9000}, nil)
		go func() {
			buf := make([]byte, 70000)
			for {
				n, from, err := k.ReadFromUDP(buf)
				if err != nil {
					return
				}
				k.WriteToUDP(buf[:n], from)
			}
		}()
		s, err := p.st.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(p.kernelIP, 9000))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		buf := make([]byte, 70000)
		for _, size := range sizes {
			msg := randomBytes(size)
			if _, err := s.Write(msg); err != nil {
				t.Fatal(err)
			}
			s.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, err := s.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("%d bytes to Linux: echo of %d bytes, err %v", size, n, err)
			}
		}
	})

	t.Run("SocatAndNetcat", func(t *testing.T) {
		requireTool(t, "socat", "socat")
		requireTool(t, "nc", "netcat-openbsd")
		msg := bytes.Repeat([]byte("verinic"), 1000)[:7000]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", p.ns.Name(), "socat", "-t", "2", "-", "UDP4:"+p.stackIP.String()+":7")
		cmd.Stdin = bytes.NewReader(msg)
		out, err := cmd.Output()
		if err != nil || !bytes.Equal(out, msg) {
			t.Fatalf("socat: %d bytes back of %d, err %v", len(out), len(msg), err)
		}
		cmd = exec.CommandContext(ctx, "ip", "netns", "exec", p.ns.Name(), "nc", "-u", "-w", "1", p.stackIP.String(), "7")
		cmd.Stdin = strings.NewReader("hello verinic\n")
		out, _ = cmd.Output() // nc exits 0 or 1 depending on the timeout path
		if string(out) != "hello verinic\n" {
			t.Fatalf("nc -u: got %q", out)
		}
	})

	t.Run("PortUnreachableSeenByLinux", func(t *testing.T) {
		c := p.kernelUDP(t, nil, &net.UDPAddr{IP: p.stackIP.AsSlice(), Port: 9})
		c.Write([]byte("anyone?"))
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := c.Read(make([]byte, 10))
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("Linux socket read: %v, want connection refused", err)
		}
		if p.st.Counters().Get(stack.ICMPUnreachOut) == 0 {
			t.Fatal("stack counted no port unreachable")
		}
	})

	t.Run("PcapIsClean", func(t *testing.T) {
		requireTool(t, "tshark", "tshark")
		p.close(t)
		if p.pcap.Frames() < 50 {
			t.Fatalf("only %d frames captured", p.pcap.Frames())
		}
		checkPcap(t, p.pcapPath, int(p.pcap.Frames()))
	})
}

// checkPcap reads the capture with tshark (trace/pcap.Tshark: checksums
// verified) and fails on any malformed packet, bad checksum or expert error.
func checkPcap(t *testing.T, path string, frames int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := pcap.Tshark(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Frames != frames {
		t.Errorf("tshark read %d packets, the capture has %d", rep.Frames, frames)
	}
	if !rep.Clean() {
		t.Fatalf("tshark flags packets in %s: %+v\n%s", path, rep, strings.Join(rep.Flagged, "\n"))
	}
	t.Logf("tshark: %d packets, 0 malformed, 0 checksum errors (%s)", rep.Frames, path)
}

// The pcap check can fail: frames with a bad IP checksum, a bad UDP
// checksum, a bad ICMP checksum and a truncated header are all flagged.
func TestLinuxPcapCheckFlagsBadPackets(t *testing.T) {
	requireTool(t, "tshark", "tshark")
	la, lb, err := memlink.Pair(memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}, memlink.Faults{}, memlink.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	defer lb.Close()
	path := filepath.Join(t.TempDir(), "bad.pcap")
	f, _ := os.Create(path)
	w, err := pcaplink.Wrap(la, f)
	if err != nil {
		t.Fatal(err)
	}
	src, dst := header.IPv4Addr{10, 0, 0, 1}, header.IPv4Addr{10, 0, 0, 2}
	build := func(proto uint8, l4 []byte, mutate func(fr []byte) []byte) {
		p, _ := la.RxPool(0).Alloc()
		fr := p.Room()
		header.EncodeEthernet(fr, header.MAC{2, 0, 0, 0, 0, 2}, header.MAC{2, 0, 0, 0, 0, 1}, header.EtherTypeIPv4)
		header.EncodeIPv4(fr[14:], header.IPv4Fields{TotalLen: uint16(20 + len(l4)), TTL: 64, Protocol: proto, Src: src, Dst: dst})
		copy(fr[34:], l4)
		p.Len = uint16(len(mutate(fr[:34+len(l4)])))
		w.TxBatch(0, []dma.Packet{p})
	}
	udp := make([]byte, 12)
	header.EncodeUDP(udp, 1, 2, 4, src, dst)
	icmp := make([]byte, 12)
	header.EncodeICMPv4Echo(icmp, header.ICMPv4Echo, 1, 1, 4)
	build(17, udp, func(fr []byte) []byte { return fr })              // good
	build(17, udp, func(fr []byte) []byte { fr[24] ^= 1; return fr }) // bad IP checksum
	build(17, udp, func(fr []byte) []byte { fr[45] ^= 1; return fr }) // bad UDP checksum
	build(1, icmp, func(fr []byte) []byte { fr[44] ^= 1; return fr }) // bad ICMP checksum
	build(17, udp, func(fr []byte) []byte { return fr[:14+20+4] })    // truncated UDP header
	w.Flush()
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := pcap.Tshark(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Frames != 5 || len(rep.Flagged) != 4 || rep.BadChecksums != 3 || rep.Malformed != 1 {
		t.Fatalf("tshark read %d packets and flagged %d (want 5 and 4): %+v\n%s", rep.Frames, len(rep.Flagged), rep, strings.Join(rep.Flagged, "\n"))
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

func nonZero(c stack.Counters) string {
	var s []string
	for _, st := range c.All() {
		if st.Value != 0 {
			s = append(s, fmt.Sprintf("%s=%d", st.Name, st.Value))
		}
	}
	return strings.Join(s, " ")
}

func TestLinuxTAP(t *testing.T) {
	p := newPeer(t, "tap", 0)
	p.testAll(t)
}

func TestLinuxVeth(t *testing.T) {
	p := newPeer(t, "veth", 1)
	p.testAll(t)
}

//go:build linux

package hostlink

import (
	"net"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/header"
)

// TestLinuxSimNICFrames runs the driver on a simulated 82599 whose port is
// wired to the kernel of a private namespace, through a TAP device and
// through a veth pair: a datagram a kernel socket sends arrives in the
// driver's RX ring, and one the driver transmits reaches the kernel socket.
func TestLinuxSimNICFrames(t *testing.T) {
	for _, kind := range []string{"tap", "veth"} {
		t.Run(kind, func(t *testing.T) { simNICFrames(t, kind) })
	}
}

func simNICFrames(t *testing.T, kind string) {
	n := newNetns(t)
	sim, err := ixgbesim.New(ixgbesim.Config{Name: "hl-" + kind, Mode: ixgbesim.FreeRunning, Policy: dma.NoHugepages})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	kernelIf := "vk1"
	var l link
	switch kind {
	case "tap":
		kernelIf = "vtap2"
		tap, err := n.OpenTAP(kernelIf, sim)
		if err != nil {
			t.Fatal(err)
		}
		l = tap
	case "veth":
		if err := n.AddVeth("vk1", "vs1"); err != nil {
			t.Fatal(err)
		}
		raw, err := n.OpenRaw("vs1", sim)
		if err != nil {
			t.Fatal(err)
		}
		l = raw
	}
	defer l.Close()
	if err := n.DisableOffloads(kernelIf); err != nil {
		t.Fatal(err)
	}
	mustIP(t, n, "addr", "add", "10.204.0.1/24", "dev", kernelIf)
	mustIP(t, n, "link", "set", kernelIf, "up")
	sim.Attach(l)
	sim.Start()
	defer sim.Stop()
	drv, err := ixgbe.New(sim, ixgbe.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	var nicMAC header.MAC
	copy(nicMAC[:], drv.MAC())
	kernelIP, nicIP := header.IPv4Addr{10, 204, 0, 1}, header.IPv4Addr{10, 204, 0, 2}
	mustIP(t, n, "neigh", "replace", nicIP.String(), "lladdr", nicMAC.String(), "dev", kernelIf)
	kernelMAC := interfaceMAC(t, n, kernelIf)
	sock := kernelSocket(t, n, kernelIP.String()+":0")
	kport := uint16(sock.LocalAddr().(*net.UDPAddr).Port)

	// Kernel → driver.
	if _, err := sock.WriteToUDP([]byte("to the driver"), &net.UDPAddr{IP: nicIP[:], Port: 7777}); err != nil {
		t.Fatal(err)
	}
	pkts := make([]dma.Packet, 32)
	got := false
	for deadline := time.Now().Add(10 * time.Second); !got && time.Now().Before(deadline); {
		k, err := drv.RxBatch(0, pkts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range pkts[:k] {
			var f header.Frame
			if header.DecodeFrame(pkts[i].Data(), &f) == nil && f.UDP() != nil && f.UDP().DstPort() == 7777 {
				if string(f.UDP().Payload()) != "to the driver" || f.Ethernet().Src() != kernelMAC || f.IPv4().Src() != kernelIP {
					t.Fatalf("received frame wrong: % x", pkts[i].Data())
				}
				got = true
			}
			pkts[i].Free()
		}
		if k == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if !got {
		t.Fatalf("the kernel's datagram never reached the RX ring; link stats %+v", l.Stats())
	}

	// Driver → kernel.
	pool, err := dma.NewMempool(drv.Allocator(), dma.MempoolConfig{Name: "hl-tx", Buffers: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release()
	p, err := pool.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	frame := udpFrame(kernelMAC, nicMAC, nicIP, kernelIP, 7777, kport, []byte("from the driver"))
	p.Len = uint16(copy(p.Room(), frame))
	for sent := 0; sent == 0; {
		if sent, err = drv.TxBatch(0, []dma.Packet{p}); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 2048)
	sock.SetReadDeadline(time.Now().Add(10 * time.Second))
	nr, from, err := sock.ReadFromUDP(buf)
	if err != nil || string(buf[:nr]) != "from the driver" || from.Port != 7777 {
		t.Fatalf("kernel socket read %q from %v: %v; link stats %+v", buf[:nr], from, err, l.Stats())
	}
	// The link counts a frame once its write returns, which may be just
	// after the kernel delivered it.
	for deadline := time.Now().Add(2 * time.Second); l.Stats().TxFrames == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if st := l.Stats(); st.TxBadFCS != 0 || st.TxFrames == 0 {
		t.Fatalf("link stats %+v", st)
	}
	// Let the driver reclaim the transmitted buffer before the pool goes.
	for deadline := time.Now().Add(2 * time.Second); pool.InUse() > 0 && time.Now().Before(deadline); {
		drv.TxBatch(0, nil)
		time.Sleep(time.Millisecond)
	}
}

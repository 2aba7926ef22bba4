package vfio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/verinic/verinic/igb"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
)

// TestInGuestIGBStack runs the project's stack unchanged on the igb driver
// (link.Link with the driver's offloads, interrupts through SetRxNotify):
// one stack on each of QEMU's 82576s, in interrupt mode over VFIO's MSI-X
// eventfds. A pings B; B echoes UDP datagrams of sizes up to the largest
// unfragmented one; A sends B 4 MiB over TCP (checksum offload and TSO
// bursts through QEMU's segmentation), B answers with its SHA-256 of what
// it read and both close. The stack never puts a FIN in a TSO burst
// (proto/tcp/output.go sends it alone), so QEMU's clearing of FIN on the
// last segment (docs/NOTES.md) does not bite.
func TestInGuestIGBStack(t *testing.T) {
	r := newIGBRig(t, func(i int) igb.Config { return igb.Config{DevID: uint16(i), LinkTimeout: 5 * time.Second} })
	addrs := [2]netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("10.77.0.2/24")}
	var sts [2]*stack.Stack
	var tcps [2]*tcp.Protocol
	for i, n := range r.nics {
		in, err := r.devs[i].EnableInterrupts(1, IRQIndexMSIX)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := in.Disable(); err != nil {
				t.Errorf("disable interrupts: %v", err)
			}
		})
		if err := n.EnableInterrupts(in, 10*time.Microsecond); err != nil {
			t.Fatal(err)
		}
		st := stack.New(stack.Config{})
		if tcps[i], err = tcp.New(st, tcp.Config{}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AddNIC(n, stack.NICConfig{Name: n.Name()}); err != nil {
			t.Fatal(err)
		}
		if err := st.AddAddress(1, addrs[i]); err != nil {
			t.Fatal(err)
		}
		if err := st.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() }) // before the NICs close (cleanups run last first)
		sts[i] = st
	}
	a, b := sts[0], sts[1]
	bAddr := addrs[1].Addr()

	echo, err := a.NewEcho(0)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	buf := make([]byte, 2048)
	var rtts []time.Duration
	for seq := uint16(1); seq <= 20; seq++ {
		sent := time.Now()
		if err := echo.Send(bAddr, seq, bytes.Repeat([]byte{byte(seq)}, 56)); err != nil {
			t.Fatal(err)
		}
		echo.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, rep, err := echo.Recv(buf)
			if err != nil {
				t.Fatalf("ping %d: %v", seq, err)
			}
			if rep.Seq == seq && rep.From == bAddr {
				break
			}
		}
		rtts = append(rtts, time.Since(sent))
	}
	t.Logf("20 pings answered; first (with ARP) %v, last %v", rtts[0].Round(time.Microsecond), rtts[19].Round(time.Microsecond))

	srv, err := b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		b := make([]byte, 65536)
		for {
			n, from, err := srv.ReadFrom(b)
			if err != nil {
				return
			}
			srv.WriteTo(b[:n], from)
		}
	}()
	cl, err := a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(bAddr, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(15, 76))
	for k, size := range []int{1, 18, 100, 512, 1000, 1400, 1472} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		if _, err := cl.WriteTo(msg, netip.AddrPortFrom(bAddr, 7)); err != nil {
			t.Fatal(err)
		}
		cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := cl.ReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("UDP echo %d (%d bytes): %d bytes back, %v", k, size, n, err)
		}
	}

	ln, err := tcps[1].Listen(netip.AddrPortFrom(netip.Addr{}, 8080), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			done <- err
			return
		}
		_, err = c.Write(h.Sum(nil))
		if err == nil {
			err = c.CloseWrite()
		}
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tcps[0].Dial(ctx, netip.AddrPort{}, netip.AddrPortFrom(bAddr, 8080))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, 4<<20)
	for i := 0; i < len(data); i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8; k++ {
			data[i+k] = byte(v >> (8 * k))
		}
	}
	start := time.Now()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	sum, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading B's digest: %v", err)
	}
	el := time.Since(start)
	if err := <-done; err != nil {
		t.Fatalf("B: %v", err)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(sum, want[:]) {
		t.Fatalf("B's SHA-256 of the 4 MiB %x, A sent %x", sum, want)
	}
	ca := tcps[0].Counters()
	t.Logf("4 MiB over TCP A -> B in %v (%.1f MB/s under TCG), SHA-256 equal; A: %d segments out, %d retransmitted, %d TSO bursts",
		el.Round(time.Millisecond), float64(len(data))/el.Seconds()/1e6, ca.Get(tcp.OutSegs), ca.Get(tcp.RetransSegs), ca.Get(tcp.TSOBursts))
	if ca.Get(tcp.TSOBursts) == 0 {
		t.Error("the stack handed no TSO burst to the igb driver (it offers TSO)")
	}
}

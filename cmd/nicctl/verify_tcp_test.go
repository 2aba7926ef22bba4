package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/models"
	"github.com/verinic/verinic/proto/link/memlink"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
	"github.com/verinic/verinic/trace"
)

// recordTCPExchange runs a real exchange between two stacks (a request, a
// 100 KB response, both sides closing) over a lossy in-memory wire and
// returns the recorded events.
func recordTCPExchange(t *testing.T) []trace.Event {
	t.Helper()
	rec := trace.NewRecorderWithData(1<<16, 1<<20)
	f := memlink.Faults{Drop: 0.02, Reorder: 0.02, Seed: 3}
	la, lb, err := memlink.Pair(memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, memlink.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}, f, f)
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	defer lb.Close()
	var tps [2]*tcp.Protocol
	var stacks []*stack.Stack
	for i, x := range []struct {
		l    *memlink.Endpoint
		addr string
	}{{la, "10.0.0.1/24"}, {lb, "10.0.0.2/24"}} {
		st := stack.New(stack.Config{})
		if tps[i], err = tcp.New(st, tcp.Config{Recorder: rec}); err != nil {
			t.Fatal(err)
		}
		st.AddNIC(x.l, stack.NICConfig{})
		st.AddAddress(1, netip.MustParsePrefix(x.addr))
		st.Start()
		defer st.Close()
		stacks = append(stacks, st)
	}
	ln, err := tps[1].Listen(netip.MustParseAddrPort("10.0.0.2:80"), 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		req := make([]byte, 16)
		if _, err := io.ReadFull(s, req); err != nil {
			done <- err
			return
		}
		_, err = s.Write(bytes.Repeat([]byte("verinic "), 100000/8))
		s.CloseWrite()
		io.Copy(io.Discard, s)
		s.Close()
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := tps[0].Dial(ctx, netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.0\r\n"))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := io.Copy(io.Discard, c); err != nil || n != 100000 {
		t.Fatalf("client read %d bytes: %v", n, err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the last ACKs
	// Stop the loops (they record timer and segment events) before
	// reading the recorder: Events is for recorders whose actors stopped.
	for _, st := range stacks {
		st.Close()
	}
	return append([]trace.Event(nil), rec.Events()...)
}

func writeEvents(t *testing.T, path string, evs []trace.Event) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := trace.WriteEvents(f, trace.Header{Note: "tcp test"}, evs); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// nicctl verify on a recorded TCP trace: one line per connection, both
// checks held, exit 0; a read whose bytes were altered fails the byte-stream
// check (with its visualization), and an ACK of data never sent fails the
// protocol check; both exit 1.
func TestVerifyTCPTrace(t *testing.T) {
	dir := t.TempDir()
	evs := recordTCPExchange(t)
	good := filepath.Join(dir, "good.ndjson")
	writeEvents(t, good, evs)
	var out bytes.Buffer
	ok, err := verifyTrace(&out, good, models.FIFOOptions{VisualizeDir: dir})
	if err != nil || !ok {
		t.Fatalf("good trace: ok=%v err=%v\n%s", ok, err, out.String())
	}
	for _, want := range []string{
		"SKIPPED ring protocol",
		"conn 1 10.0.0.1:",
		"streams: held (wrote 16 bytes to conn 2, read 100000 bytes from it); protocol: held",
		"HELD   TCP byte streams (porcupine): 2 directions linearizable as byte streams",
		"HELD   TCP protocol (tla/Tcp.tla): 2 connections replayed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("good output lacks %q:\n%s", want, out.String())
		}
	}
	if code := run([]string{"verify", "--html", dir, good}); code != 0 {
		t.Errorf("good trace: exit %d", code)
	}

	// A corrupted read.
	bad := append([]trace.Event(nil), evs...)
	for i, e := range bad {
		if e.Kind == trace.AppRead && e.Conn == 1 && len(e.Data) > 100 {
			b := []byte(e.Data)
			b[50] = 'X'
			bad[i].Data = string(b)
			break
		}
	}
	badPath := filepath.Join(dir, "bad.ndjson")
	writeEvents(t, badPath, bad)
	out.Reset()
	ok, err = verifyTrace(&out, badPath, models.FIFOOptions{VisualizeDir: dir, Prefix: "bad"})
	if err != nil || ok {
		t.Fatalf("corrupted read: ok=%v err=%v\n%s", ok, err, out.String())
	}
	html := filepath.Join(dir, "bad-tcp", "tcp-stream-conn2-to-conn1.html")
	for _, want := range []string{"streams: VIOLATED conn 2 -> conn 1: read seq", "is 'X'", "visualization: " + html} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("corrupted-read output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(html); err != nil {
		t.Error(err)
	}
	if code := run([]string{"verify", "--html", dir, badPath}); code != 1 {
		t.Errorf("corrupted read: exit %d, want 1", code)
	}

	// An ACK of data never sent, as conn 1 received it.
	bad = append([]trace.Event(nil), evs...)
	for i, e := range bad {
		if e.Kind == trace.TCPSegRecv && e.Conn == 2 && e.State == trace.TCPStateEstablished && e.Flags&uint8(0x10) != 0 {
			bad[i].TAck += 1 << 20
			break
		}
	}
	writeEvents(t, badPath, bad)
	out.Reset()
	if ok, _ := verifyTrace(&out, badPath, models.FIFOOptions{VisualizeDir: dir}); ok || !strings.Contains(out.String(), "FAILED TCP protocol") {
		t.Errorf("an ACK beyond SND.NXT passed:\n%s", out.String())
	}
}

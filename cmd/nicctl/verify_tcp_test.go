package main

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verinic/verinic/models"
	"github.com/verinic/verinic/trace"
)

// writeTCPTrace records two connected endpoints exchanging data both ways
// and closing, plus a connection whose peer was not recorded, and writes
// the trace; corrupt alters one byte the server read.
func writeTCPTrace(t *testing.T, path string, corrupt bool) {
	t.Helper()
	rec := trace.NewRecorderWithData(1000, 1<<16)
	client := netip.MustParseAddrPort("10.0.0.1:40000")
	server := netip.MustParseAddrPort("10.0.0.2:80")
	rec.TCPOpen(1, client, server, trace.TCPStateSynSent, true)
	rec.TCPOpen(2, server, client, trace.TCPStateSynReceived, false)
	rec.TCPStateChange(1, trace.TCPStateSynSent, trace.TCPStateEstablished)
	var off [3]uint64
	var roff [3]uint64
	send := func(from, to uint32, msg string) {
		call := rec.Now()
		rec.AppWrite(from, call, off[from], []byte(msg))
		off[from] += uint64(len(msg))
		for len(msg) > 0 { // the peer reads it in pieces of up to 7 bytes
			n := min(7, len(msg))
			call := rec.Now()
			rec.AppRead(to, call, roff[to], []byte(msg[:n]), false)
			roff[to] += uint64(n)
			msg = msg[n:]
		}
	}
	send(1, 2, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
	send(2, 1, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	rec.AppCloseCall(1, rec.Now(), true)
	rec.AppRead(2, rec.Now(), roff[2], nil, true)
	rec.AppCloseCall(2, rec.Now(), false)
	rec.AppRead(1, rec.Now(), roff[1], nil, true)
	// A connection to a Linux peer: one side only.
	rec.TCPOpen(3, netip.MustParseAddrPort("10.0.0.1:40001"), netip.MustParseAddrPort("10.0.0.9:22"), trace.TCPStateSynSent, true)
	rec.AppWrite(3, rec.Now(), 0, []byte("SSH-2.0-x\r\n"))
	evs := append([]trace.Event(nil), rec.Events()...)
	if corrupt {
		for i, e := range evs {
			if e.Kind == trace.AppRead && e.Conn == 2 && e.Buf == 7 {
				evs[i].Data = "dex.hXm"
			}
		}
	}
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

// nicctl verify on a TCP trace: one line per connection; a good trace
// exits 0, a corrupted one exits 1 naming the bad read and writing the
// visualization.
func TestVerifyTCPTrace(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.ndjson"), filepath.Join(dir, "bad.ndjson")
	writeTCPTrace(t, good, false)
	writeTCPTrace(t, bad, true)

	var out bytes.Buffer
	ok, err := verifyTrace(&out, good, models.FIFOOptions{VisualizeDir: dir})
	if err != nil || !ok {
		t.Fatalf("good trace: ok=%v err=%v\n%s", ok, err, out.String())
	}
	for _, want := range []string{
		"(0 ring, 0 application, 24 TCP)",
		"SKIPPED ring protocol",
		"conn 1 10.0.0.1:40000->10.0.0.2:80: 12 events; streams: held (wrote 37 bytes to conn 2, read 43 bytes from it); protocol: not checked",
		"conn 2 10.0.0.2:80->10.0.0.1:40000: 10 events; streams: held (wrote 43 bytes to conn 1, read 37 bytes from it)",
		"conn 3 10.0.0.1:40001->10.0.0.9:22: 2 events; streams: skipped, no peer in trace",
		"HELD   TCP byte streams (porcupine): 2 directions linearizable as byte streams",
		"SKIPPED TCP protocol: not checked, models.ValidateTCPTrace",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("good output lacks %q:\n%s", want, out.String())
		}
	}
	if code := run([]string{"verify", "--html", dir, good}); code != 0 {
		t.Errorf("good trace: exit %d", code)
	}

	out.Reset()
	ok, err = verifyTrace(&out, bad, models.FIFOOptions{VisualizeDir: dir, Prefix: "bad"})
	if err != nil || ok {
		t.Fatalf("bad trace: ok=%v err=%v\n%s", ok, err, out.String())
	}
	html := filepath.Join(dir, "bad-tcp", "tcp-stream-conn1-to-conn2.html")
	for _, want := range []string{
		"streams: VIOLATED conn 1 -> conn 2: read seq",
		`byte at stream offset 12 is 'X', but write seq 3 wrote 't' there`,
		"FAILED TCP byte streams (porcupine): 1 directions violated, 0 undecided, 1 held, 1 skipped",
		"visualization: " + html,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("bad output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(html); err != nil {
		t.Error(err)
	}
	if code := run([]string{"verify", "--html", dir, bad}); code != 1 {
		t.Errorf("bad trace: exit %d, want 1", code)
	}
}

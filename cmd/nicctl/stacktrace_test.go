package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/models"
)

// verifyChecks runs nicctl verify's checks on the trace at path and returns
// the report; every check whose name starts with one of held must have
// held.
func verifyChecks(t *testing.T, path string, held ...string) verifyReport {
	t.Helper()
	rep, err := verifyTraceReport(io.Discard, path, models.FIFOOptions{SegmentOps: 4000, Timeout: time.Minute, VisualizeDir: t.TempDir()})
	if err != nil {
		t.Fatalf("verify %s: %v", path, err)
	}
	for _, want := range held {
		found := false
		for _, c := range rep.Checks {
			if strings.HasPrefix(c.Name, want) {
				found = true
				if c.Result != "held" {
					t.Errorf("verify %s: %s %s: %s", path, c.Name, c.Result, c.Detail)
				}
			}
		}
		if !found {
			t.Errorf("verify %s: no check %q among %v", path, want, rep.Checks)
		}
	}
	return rep
}

// stackTraceChecks are what a trace of two project stacks on simulated
// 82599s must pass: the rings against the specs, the simulated devices'
// view (device truth), the ring FIFO, TCP's byte streams and protocol.
var stackTraceChecks = []string{"ring protocol", "device truth", "ring FIFO", "TCP byte streams", "TCP protocol"}

// serveSimTrace runs serve --dev sim with UDP echo and --trace and returns
// the trace's path and what serve printed.
func serveSimTrace(t *testing.T, fetch int) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serve.ndjson")
	var out strings.Builder
	if err := runServe([]string{"--dev", "sim", "--port", "8080", "--udp-echo", "7", "--fetch-size", strconv.Itoa(fetch),
		"--trace", path, "--trace-events", "400000", "--trace-data", "4000000"}, &out); err != nil {
		t.Fatalf("serve --dev sim --trace: %v\n%s", err, out.String())
	}
	return path, out.String()
}

// serve --dev sim --udp-echo --trace: the client's HTTP requests (a TCP
// exchange both ways) and UDP echoes of several sizes (one fragmented),
// the trace of both stacks, both drivers and both simulated devices
// written atomically, and every check of nicctl verify holds on it.
func TestServeSimTrace(t *testing.T) {
	path, out := serveSimTrace(t, 200000)
	wantLines(t, out,
		`UDP echo 4000 bytes to 10\.9\.0\.2:7: came back unchanged`,
		`UDP echo 1 bytes to 10\.9\.0\.2:7: came back unchanged`,
		`10 requests answered as expected`,
		`trace \d+ events written to `+regexp.QuoteMeta(path),
	)
	rep := verifyChecks(t, path, stackTraceChecks...)
	if !rep.OK || rep.Devices != 2 || rep.RingEvents == 0 || rep.TCPEvents == 0 {
		t.Errorf("verify: ok %v, %d devices, %d ring and %d TCP events; want ok, 2 devices, both kinds", rep.OK, rep.Devices, rep.RingEvents, rep.TCPEvents)
	}
	t.Logf("trace of serve --dev sim: %d events (%d ring, %d TCP), %d checks", rep.Events, rep.RingEvents, rep.TCPEvents, len(rep.Checks))
	// Nothing else is left beside it (the temporary file was renamed).
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left beside the trace: %v", left)
	}
}

// A trace of serve --dev sim changed in one place fails verify, in the
// check that owns that place: a transmit post's buffer moved off every
// pool's grid (ring protocol), a byte of what the application read (TCP
// byte streams: the reader got a byte nobody wrote), the sequence number
// of a data segment sent (TCP protocol).
func TestServeSimTraceCorrupted(t *testing.T) {
	path, _ := serveSimTrace(t, 50000)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for _, c := range []struct {
		name  string
		match *regexp.Regexp
		edit  func(line string) string
		fails string
	}{
		{"tx post off the grid", regexp.MustCompile(`"kind":"post","dev":0,"dir":"tx"`), func(l string) string {
			return regexp.MustCompile(`"buf":"0x[0-9a-f]+"`).ReplaceAllString(l, `"buf":"0x7777000"`)
		}, "ring protocol"},
		{"a byte read that nobody wrote", regexp.MustCompile(`"kind":"app_read".*"len":[1-9]`), func(l string) string {
			m := regexp.MustCompile(`"data":"([^"]*)"`).FindStringSubmatch(l)
			data, err := base64.StdEncoding.DecodeString(m[1])
			if err != nil || len(data) == 0 {
				t.Fatalf("app_read data %q: %v", m[1], err)
			}
			data[len(data)/2] ^= 0x20
			return strings.Replace(l, m[1], base64.StdEncoding.EncodeToString(data), 1)
		}, "TCP byte streams"},
		{"a data segment's sequence number", regexp.MustCompile(`"kind":"tcp_seg_sent".*"len":[1-9]`), func(l string) string {
			m := regexp.MustCompile(`"sn":(\d+)`).FindStringSubmatch(l)
			sn, _ := strconv.ParseUint(m[1], 10, 32)
			return strings.Replace(l, m[0], fmt.Sprintf(`"sn":%d`, uint32(sn+100_000)), 1)
		}, "TCP protocol"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := append([]string(nil), lines...)
			i := -1
			for j, l := range bad {
				if c.match.MatchString(l) {
					i = j
					break
				}
			}
			if i < 0 {
				t.Fatalf("no line of the trace matches %v", c.match)
			}
			// Past the middle of the run where there is one, so that the
			// change is not in the set-up alone.
			for j := len(bad) / 2; j < len(bad); j++ {
				if c.match.MatchString(bad[j]) {
					i = j
					break
				}
			}
			bad[i] = c.edit(bad[i])
			file := filepath.Join(t.TempDir(), "bad.ndjson")
			if err := os.WriteFile(file, []byte(strings.Join(bad, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := verifyTraceReport(io.Discard, file, models.FIFOOptions{SegmentOps: 4000, Timeout: time.Minute, VisualizeDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			failed := false
			for _, ch := range rep.Checks {
				if strings.HasPrefix(ch.Name, c.fails) && ch.Result == "failed" {
					failed = true
					first, _, _ := strings.Cut(ch.Detail, "\n")
					t.Logf("line %d changed: %s failed: %s", i+1, ch.Name, first)
				}
			}
			if rep.OK || !failed {
				t.Errorf("line %d changed (%s): ok %v, checks %v; want %s failed", i+1, c.name, rep.OK, rep.Checks, c.fails)
			}
		})
	}
}

// --trace refuses before the run what cannot be recorded: a directory, a
// recorder too small for serve --dev sim's known traffic.
func TestStackTraceRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--dev", "sim", "--trace", dir}, "--trace " + dir + ": a directory; name a file"},
		{[]string{"serve", "--dev", "sim", "--trace", dir + "/t.ndjson", "--trace-events", "0"}, "--trace-events 0: want at least 1"},
		{[]string{"serve", "--dev", "sim", "--trace", dir + "/t.ndjson", "--trace-data", "-1"}, "--trace-data -1: want 0 or more bytes"},
		{[]string{"serve", "--dev", "sim", "--fetch-size", "1000000", "--trace", dir + "/t.ndjson", "--trace-events", "20000"}, "--trace-events 20000 cannot hold this run's trace"},
		{[]string{"serve", "--dev", "sim", "--trace", dir + "/t.ndjson", "--trace-events", "1000000000000"}, "more than the"},
		{[]string{"sim", "--tap", "x", "--ip", "10.9.0.2/24", "--trace", dir + "/t.ndjson", "--trace-events", "0"}, "--trace-events 0: want at least 1"},
	} {
		var err error
		if c.args[0] == "serve" {
			err = runServe(c.args[1:], io.Discard)
		} else {
			err = runSim(c.args[1:], io.Discard)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error saying %q", c.args, err, c.want)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left after refusals: %v", left)
	}
}

// A recorder too small for the run: no file at --trace, an error saying
// how many events were dropped.
func TestStackTraceDidNotFit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "small.ndjson")
	err := runServe([]string{"--dev", "sim", "--fetch-size", "0", "--trace", path, "--trace-events", "2000"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "the trace did not fit") {
		t.Fatalf("serve with --trace-events 2000: %v, want the trace did not fit", err)
	}
	if left, _ := os.ReadDir(filepath.Dir(path)); len(left) != 0 {
		t.Errorf("files left: %v", left)
	}
}

//go:build linux

package linuxtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verinic/verinic/models"
	"github.com/verinic/verinic/proto/gonet"
	"github.com/verinic/verinic/proto/tcp"
	"github.com/verinic/verinic/trace"
)

// The helpers of the TCP tests against Linux (tcp_linux_test.go): a peer
// carrying TCP, an HTTP server on the stack, generated bodies with their
// SHA-256, bounded external commands, and the trace checks.

// newTCPPeer is a peer whose stack carries TCP with cfg. noPcap leaves the
// capture out (bulk transfers), unless $LINUXTEST_PCAP is set (to diagnose;
// with $LINUXTEST_KEEP_DIR the capture is kept).
func newTCPPeer(t testing.TB, kind string, subnet int, cfg tcp.Config, noPcap bool) *peer {
	t.Helper()
	if os.Getenv("LINUXTEST_PCAP") != "" {
		noPcap = false
	}
	return newPeerWith(t, kind, subnet, peerOptions{TCP: &cfg, NoPcap: noPcap})
}

// wires runs f as a subtest per kind of wire, each on its own subnet
// (10.9.base.0/24 for TAP, 10.9.base+1.0/24 for veth).
func wires(t *testing.T, base int, f func(t *testing.T, kind string, subnet int)) {
	for i, kind := range []string{"tap", "veth"} {
		t.Run(kind, func(t *testing.T) { f(t, kind, base+i) })
	}
}

// body is the generated body of n bytes: a ChaCha8 stream seeded by n, so
// that the server and the checks produce the same bytes without keeping
// them.
func body(n int64) io.Reader {
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("verinic-linuxtest-%d", n))
	return io.LimitReader(rand.NewChaCha8(seed), n)
}

func bodyBytes(n int64) []byte {
	b, err := io.ReadAll(body(n))
	if err != nil {
		panic(err)
	}
	return b
}

var (
	bodySumMu sync.Mutex
	bodySums  = map[int64]string{}
)

// bodySum returns the hex SHA-256 of body(n).
func bodySum(n int64) string {
	bodySumMu.Lock()
	defer bodySumMu.Unlock()
	if s, ok := bodySums[n]; ok {
		return s
	}
	h := sha256.New()
	io.Copy(h, body(n))
	s := hex.EncodeToString(h.Sum(nil))
	bodySums[n] = s
	return s
}

// httpMux is the stack's HTTP service: GET /bytes/{n} serves body(n) with
// its SHA-256 in X-Sha256 and a Content-Length (no chunking, so the trace
// checks find the body at the end of the stream); POST /sha256 answers the
// hex SHA-256 of the request body.
func httpMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 || n > 1<<30 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Sha256", bodySum(n))
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, body(n))
	})
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
	})
	return mux
}

// serveHTTP serves httpMux on the stack at port with the given backlog
// (0: 128) until the test ends.
func (p *peer) serveHTTP(t *testing.T, port, backlog int) *gonet.TCPListener {
	t.Helper()
	ln, err := gonet.ListenTCPBacklog(p.tcp, &net.TCPAddr{IP: p.stackIP.AsSlice(), Port: port}, backlog)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: httpMux(), ReadHeaderTimeout: 30 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("http.Server.Serve did not return within 10 s of Close")
		}
	})
	return ln
}

// cmdIn returns a command running inside the namespace, killed when ctx
// ends.
func (p *peer) cmdIn(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.ns.Name(), name}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// waitListen waits (at most 10 s) until a kernel socket listens on port
// inside the namespace.
func (p *peer) waitListen(t *testing.T, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		out, _ := p.ns.Exec(ctx, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if strings.Contains(string(out), fmt.Sprintf(":%d", port)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d in the namespace after 10 s", port)
}

// rate formats a throughput.
func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MB/s (%.0f Mbit/s)", float64(n)/d.Seconds()/1e6, float64(n)*8/d.Seconds()/1e6)
}

// tcpCounters lists the TCP counters that are not zero.
func tcpCounters(tp *tcp.Protocol) string {
	var s []string
	for _, st := range tp.Counters().All() {
		if st.Value != 0 {
			s = append(s, fmt.Sprintf("%s=%d", st.Name, st.Value))
		}
	}
	return strings.Join(s, " ")
}

// waitNoConns waits, at most limit, until the stack holds no connection
// and no buffer memory, and fails listing what is left otherwise.
func (p *peer) waitNoConns(t *testing.T, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		c := p.tcp.Counters()
		if c.Get(tcp.CurrConns) == 0 && p.tcp.MemoryInUse() == 0 {
			return
		}
		if time.Now().After(deadline) {
			var left []string
			for _, in := range p.tcp.Connections() {
				if in.State != tcp.Listen {
					left = append(left, fmt.Sprintf("%v->%v %v recvq %d sendq %d", in.Local, in.Remote, in.State, in.RecvQ, in.SendQ))
				}
			}
			t.Fatalf("%v after the last client left: %d connections, %d bytes of buffers held: %s", limit, c.Get(tcp.CurrConns), p.tcp.MemoryInUse(), strings.Join(left, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Traces.

// newTCPRecorder returns a recorder for the sampled transfers of a test:
// events and application bytes beyond its room are dropped (and counted),
// so that later, larger transfers do not grow it.
func newTCPRecorder(events, dataBytes int) *trace.Recorder {
	return trace.NewRecorderWithData(events, dataBytes)
}

// saveAndCheckTrace writes rec (the stack closed: no actor records any
// more) under dir, reads it back and runs the model checks on it:
// models.CheckTCPStreams (porcupine byte streams; a connection whose other
// end is the Linux kernel has no peer in the trace and is skipped, so this
// fails only on a violation or an undecided direction), then
// models.ValidateTCPTrace (each endpoint against Tcp.tla's protocol).
func saveAndCheckTrace(t *testing.T, rec *trace.Recorder, name, note string) []trace.Event {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".ndjson")
	if err := trace.WriteFile(path, trace.Header{Note: note}, rec); err != nil {
		t.Fatal(err)
	}
	h, evs, err := trace.ReadFile(path)
	if err != nil {
		t.Fatalf("reading back %s: %v", path, err)
	}
	keepCapture(t, path)
	st, _ := os.Stat(path)
	t.Logf("trace %s: %d events (%d dropped, %d bytes of data dropped), %d bytes", path, len(evs), h.Dropped, rec.DataDropped(), st.Size())
	if len(evs) == 0 {
		t.Fatalf("trace %s is empty", path)
	}
	rep := models.CheckTCPStreams(evs, time.Minute)
	for _, r := range rep.Results {
		switch r.Verdict {
		case models.StreamViolated, models.StreamUnknown:
			t.Errorf("trace %s: %s: %v: %s (seq %d)", path, r.Direction(), r.Verdict, r.Reason, r.BadSeq)
		}
	}
	t.Logf("models.CheckTCPStreams: %d connections, %d directions held, %d skipped (Linux end not in the trace)",
		len(rep.Conns), rep.Count(models.StreamHeld), rep.Count(models.StreamSkipped))
	// The protocol: every endpoint replayed against tla/Tcp.tla's abstract
	// TCP (the segments it received, whatever sent them, are the
	// channel's output).
	v := models.ValidateTCPTrace(evs)
	if !v.OK() {
		t.Errorf("trace %s: models.ValidateTCPTrace: %v\n%s", path, v.Violation, v.String())
	} else {
		var sent, recv uint64
		for _, c := range v.Conns {
			sent += c.BytesSent
			recv += c.BytesReceived
		}
		t.Logf("models.ValidateTCPTrace: %d TCP events, %d endpoints replayed against Tcp.tla, no violation (%d bytes sent, %d received)", v.Events, len(v.Conns), sent, recv)
	}
	return evs
}

// connStream is one stack connection of a trace, found by its remote
// endpoint: the bytes its application wrote and read, checked to be
// recorded whole, at contiguous offsets.
type connStream struct {
	id             uint32
	written, read  []byte
	eof, closed    bool
	local, remote  netip.AddrPort
	writes, nreads int
}

// streamOf collects the connection of evs whose remote (matchRemote) or
// local port is port. It fails the test if the connection is not in the
// trace or its application data was not recorded whole.
func streamOf(t *testing.T, evs []trace.Event, port uint16, matchRemote bool) *connStream {
	t.Helper()
	var cs *connStream
	for i := range evs {
		e := &evs[i]
		if e.Kind != trace.TCPOpen {
			continue
		}
		l, r := trace.UnpackAddrPort(e.Buf), trace.UnpackAddrPort(e.Aux)
		if matchRemote && r.Port() == port || !matchRemote && l.Port() == port {
			cs = &connStream{id: e.Conn, local: l, remote: r}
			break
		}
	}
	if cs == nil {
		t.Fatalf("trace: no connection with port %d", port)
	}
	for i := range evs {
		e := &evs[i]
		if e.Conn != cs.id {
			continue
		}
		switch e.Kind {
		case trace.AppWrite, trace.AppRead:
			if int(e.Len) != len(e.Data) {
				t.Fatalf("trace: conn %d %v at offset %d: %d bytes, %d recorded (data arena full)", cs.id, e.Kind, e.Buf, e.Len, len(e.Data))
			}
			dst := &cs.written
			if e.Kind == trace.AppRead {
				dst = &cs.read
				cs.nreads++
				if e.Flags&1 != 0 {
					cs.eof = true
				}
			} else {
				cs.writes++
			}
			if e.Buf != uint64(len(*dst)) {
				t.Fatalf("trace: conn %d %v at offset %d, the stream so far has %d bytes", cs.id, e.Kind, e.Buf, len(*dst))
			}
			*dst = append(*dst, e.Data...)
		case trace.AppClose:
			cs.closed = true
		}
	}
	return cs
}

// checkSuffix fails unless stream ends with want (an HTTP message whose
// body is want, or the whole stream).
func checkSuffix(t *testing.T, what string, stream, want []byte) {
	t.Helper()
	if !bytes.HasSuffix(stream, want) {
		n := min(len(stream), len(want))
		t.Fatalf("trace: %s: the %d bytes recorded do not end with the %d bytes of the body (last %d bytes differ: sha256 %x vs %x)",
			what, len(stream), len(want), n, sha256.Sum256(stream[len(stream)-n:]), sha256.Sum256(want[len(want)-n:]))
	}
}

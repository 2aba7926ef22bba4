package tcp_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/internal/netsim"
	"github.com/verinic/verinic/proto/tcp"
	"github.com/verinic/verinic/trace"
)

var update = flag.Bool("update", false, "rewrite testdata/netsim.golden")

// The netsim matrix: a 1 MiB transfer from A to B over a path with a
// 100 Mbit/s bottleneck (64-frame drop-tail queue in each direction), for
// every loss rate, one-way delay and receive buffer below. Everything runs
// on one goroutine on a virtual clock (internal/netsim), so every count in
// the table, and the virtual completion time, is exactly reproducible.
var (
	netsimLoss    = []float64{0, 0.01, 0.05}
	netsimDelay   = []time.Duration{time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond}
	netsimBuffers = []int{16 << 10, 64 << 10, 256 << 10}
)

const (
	netsimBytes = 1 << 20
	netsimRate  = 100_000_000
	// netsimLimit bounds each cell's virtual time: a stall fails the cell.
	netsimLimit = 300 * time.Second
)

type netsimCell struct {
	loss  float64
	delay time.Duration
	buf   int
}

// netsimResult is one row of the table.
type netsimResult struct {
	cell                                         netsimCell
	ms                                           int64 // virtual time from Connect to EOF at B
	segs, retrans, timeouts, sackRec, fastRetran uint64
	lost, qdrops                                 uint64 // data direction: random losses, bottleneck drops
}

func (r netsimResult) kbps() int64 { return int64(netsimBytes) * 8 / max(r.ms, 1) }

func (r netsimResult) String() string {
	return fmt.Sprintf("%4.0f%% %4dms %4dKiB | %7d %8d | %5d %7d %7d %8d %6d | %5d %6d",
		r.cell.loss*100, r.cell.delay.Milliseconds(), r.cell.buf>>10, r.ms, r.kbps(),
		r.segs, r.retrans, r.timeouts, r.sackRec, r.fastRetran, r.lost, r.qdrops)
}

const netsimHeader = "loss delay    rcvbuf |  time/ms   kbit/s |  segs retrans timeout sackrec fastrx |  lost qdrops"

// runNetsimCell transfers netsimBytes from A to B and returns the counts.
// The wire's seed depends on the cell, so each cell sees its own losses.
func runNetsimCell(t testing.TB, c netsimCell, seed uint64) netsimResult {
	t.Helper()
	path := netsim.Path{Delay: c.delay, Rate: netsimRate, Queue: 64, Loss: c.loss, Seed: seed}
	back := path
	back.Seed = seed ^ 0xa5a5
	// Both hosts record into one trace, checked when the cell ends.
	rec := trace.NewRecorderWithData(1<<16, 4<<20)
	s, err := netsim.NewSim(netsim.Options{AB: path, BA: back, Seed: seed,
		TCP: tcp.Config{RecvBuffer: c.buf, RecvBufferMax: c.buf, Recorder: rec}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, netsimBytes)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	ln, err := s.B.TCP.Listen(netip.AddrPortFrom(s.B.Addr, 80), 4)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := s.A.TCP.Connect(netip.AddrPort{}, netip.AddrPortFrom(s.B.Addr, 80))
	if err != nil {
		t.Fatal(err)
	}
	start := s.Now()
	limit := start.Add(netsimLimit)
	var srv *tcp.Conn
	written := 0
	closed := false
	h := sha256.New()
	got := 0
	buf := make([]byte, 64<<10)
	var doneAt time.Time
	for doneAt.IsZero() {
		if !s.Now().Before(limit) {
			t.Fatalf("%+v: stalled: %d of %d bytes received after %v of virtual time (A: %v)", c, got, netsimBytes, netsimLimit, cli.Info())
		}
		if err := s.Advance(limit); err != nil {
			t.Fatal(err)
		}
		if srv == nil {
			srv = ln.TryAccept()
		}
		for written < len(data) {
			n, err := cli.WriteSome(data[written:])
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			if n == 0 {
				break
			}
			written += n
		}
		// Close only once established: a CLOSE in SYN-SENT deletes the
		// connection and its queued data (RFC 9293 3.10.4).
		if written == len(data) && !closed && cli.State() == tcp.Established {
			cli.Close()
			closed = true
		}
		for srv != nil {
			n, err := srv.ReadSome(buf)
			h.Write(buf[:n])
			got += n
			if errors.Is(err, io.EOF) {
				doneAt = s.Now()
				break
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if n == 0 {
				break
			}
		}
	}
	want := sha256.Sum256(data)
	if got != len(data) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("%+v: received %d bytes, sha256 %x, want %d bytes %x", c, got, h.Sum(nil), len(data), want)
	}
	srv.Close()
	// Both sides finish: A in TIME-WAIT or gone, B gone.
	end := s.Now().Add(10 * time.Second)
	for s.Now().Before(end) {
		if err := s.Advance(end); err != nil {
			t.Fatal(err)
		}
	}
	if st := srv.State(); st != tcp.Closed {
		t.Errorf("%+v: B ends in %v, want CLOSED", c, st)
	}
	if st := cli.State(); st != tcp.TimeWait && st != tcp.Closed {
		t.Errorf("%+v: A ends in %v, want TIME-WAIT", c, st)
	}
	checkTrace(t, fmt.Sprintf("%+v", c), rec)
	ca := s.A.TCP.Counters()
	st := s.A.Link.Stats()
	return netsimResult{cell: c, ms: doneAt.Sub(start).Milliseconds(),
		segs: ca.Get(tcp.OutSegs) + ca.Get(tcp.RetransSegs), retrans: ca.Get(tcp.RetransSegs),
		timeouts: ca.Get(tcp.TCPTimeouts), sackRec: ca.Get(tcp.TCPSACKRecovery), fastRetran: ca.Get(tcp.TCPFastRetrans),
		lost: st.Lost, qdrops: st.QueueDrops}
}

func netsimMatrix(t testing.TB) []netsimResult {
	var out []netsimResult
	i := uint64(0)
	for _, loss := range netsimLoss {
		for _, d := range netsimDelay {
			for _, b := range netsimBuffers {
				i++
				out = append(out, runNetsimCell(t, netsimCell{loss, d, b}, i))
			}
		}
	}
	return out
}

func netsimTable(rows []netsimResult) string {
	var sb strings.Builder
	sb.WriteString("# go test ./proto/tcp -run Netsim -update regenerates this table.\n")
	fmt.Fprintf(&sb, "# %d KiB A->B over %d Mbit/s, 64-frame queues; virtual time.\n", netsimBytes>>10, netsimRate/1_000_000)
	sb.WriteString(netsimHeader + "\n")
	for _, r := range rows {
		sb.WriteString(r.String() + "\n")
	}
	return sb.String()
}

// TestNetsim runs the matrix and compares the table with the golden file
// exactly (go test -run Netsim -update rewrites it). Beyond the counts it
// checks that every transfer arrives intact (sha256, in runNetsimCell),
// within its virtual-time bound, that both ends close (B CLOSED, A in
// TIME-WAIT), that a path that loses nothing sees no retransmission, and
// that without loss a larger receive buffer is never slower by more than
// 5 %.
func TestNetsim(t *testing.T) {
	if testing.Short() {
		t.Skip("the matrix takes a few seconds")
	}
	rows := netsimMatrix(t)
	table := netsimTable(rows)
	t.Log("\n" + table)
	golden := filepath.Join("testdata", "netsim.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != table {
		t.Errorf("netsim table differs from %s (if the change is intended, rerun with -update):\n--- want\n%s--- got\n%s", golden, want, table)
	}
	// Without loss (random or at the bottleneck), throughput does not fall
	// as the buffer grows. A window past the path's BDP plus the queue
	// overflows the drop-tail queue in slow start; those cells are left
	// out (at 1 ms the 256 KiB buffer loses ~160 frames and needs two
	// timeouts, see the table).
	lossless := func(r netsimResult) bool { return r.cell.loss == 0 && r.qdrops == 0 }
	for _, r := range rows {
		if r.cell.loss != 0 {
			continue
		}
		for _, q := range rows {
			if lossless(r) && lossless(q) && q.cell.delay == r.cell.delay && q.cell.buf > r.cell.buf && q.kbps()*105 < r.kbps()*100 {
				t.Errorf("delay %v: %d KiB buffer gives %d kbit/s, less than %d KiB's %d", r.cell.delay, q.cell.buf>>10, q.kbps(), r.cell.buf>>10, r.kbps())
			}
		}
		if r.retrans != 0 && r.qdrops == 0 {
			t.Errorf("%+v: %d retransmissions on a path that lost nothing", r.cell, r.retrans)
		}
	}
}

// TestNetsimDeterministic runs a corner of the matrix twice and requires
// identical results: the simulation and TCP depend on nothing but the
// seeds and the virtual clock.
func TestNetsimDeterministic(t *testing.T) {
	cells := []netsimCell{{0.05, 25 * time.Millisecond, 16 << 10}, {0.01, 50 * time.Millisecond, 256 << 10}, {0, time.Millisecond, 64 << 10}}
	for i, c := range cells {
		a := runNetsimCell(t, c, uint64(100+i))
		b := runNetsimCell(t, c, uint64(100+i))
		if a != b {
			t.Errorf("two runs differ:\n%v\n%v", a, b)
		}
	}
}

package tcp_test

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
)

// capWire joins two simulated NICs back to back and keeps a copy of every
// frame A transmits (without its FCS): the wire's truth, whatever the
// devices did to what the drivers gave them.
type capWire struct {
	mu     sync.Mutex
	frames [][]byte
}

type capEnd struct {
	w    *capWire // nil: not captured
	peer *ixgbesim.NIC
}

func (e *capEnd) Transmit(frame []byte) {
	if e.w != nil {
		e.w.mu.Lock()
		e.w.frames = append(e.w.frames, bytes.Clone(frame[:len(frame)-4]))
		e.w.mu.Unlock()
	}
	e.peer.Receive(frame)
}

func (e *capEnd) Up() bool { return true }

func (w *capWire) attach(a, b *ixgbesim.NIC) {
	a.Attach(&capEnd{w: w, peer: b})
	b.Attach(&capEnd{peer: a})
}

// wireSeg is a TCP data segment seen on the wire, its sequence number
// relative to the ISS.
type wireSeg struct {
	seq     uint32
	flags   header.TCPFlags
	payload []byte
}

// dataSegments checks every captured TCP frame (IPv4 and TCP checksums
// valid, DF set, no more than mss data bytes, within a 1500-byte MTU) and
// returns the data segments, retransmitted copies dropped, by sequence
// number.
func (w *capWire) dataSegments(t *testing.T, mss int) []wireSeg {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var iss uint32
	seen := map[uint32]bool{}
	var segs []wireSeg
	for i, f := range w.frames {
		eth := header.Ethernet(f)
		if eth.EtherType() != header.EtherTypeIPv4 {
			continue
		}
		ip, err := header.ParseIPv4(f[header.EthernetHeaderLen:])
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if ip.Protocol() != header.IPProtocolTCP {
			continue
		}
		if int(ip.TotalLen()) > 1500 || !ip.DontFragment() {
			t.Fatalf("frame %d: IP total length %d, DF %v", i, ip.TotalLen(), ip.DontFragment())
		}
		seg, err := header.ParseTCP(ip.Payload(), ip.Src(), ip.Dst())
		if err != nil {
			t.Fatalf("frame %d (IP ID %d): %v", i, ip.ID(), err)
		}
		if seg.Flags().Has(header.TCPFlagSYN) {
			iss = seg.Seq()
		}
		n := len(seg.Payload())
		if n > mss {
			t.Fatalf("frame %d: %d data bytes, more than the MSS %d", i, n, mss)
		}
		rel := seg.Seq() - iss
		if n == 0 || seen[rel] {
			continue
		}
		seen[rel] = true
		segs = append(segs, wireSeg{rel, seg.Flags(), bytes.Clone(seg.Payload())})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	return segs
}

// tsoTransfer sends data from A to B over two simulated 82599s joined by a
// capturing wire and returns the data segments A put on the wire, with the
// connection's MSS and A's stack counters.
func tsoTransfer(t *testing.T, cfg stack.Config, data []byte) ([]wireSeg, int, stack.Counters, tcp.Counters) {
	var w capWire
	p := newSimNICPairOpts(t, simOpts{cfg: cfg, wire: w.attach, rec: checkedRecorder(t)})
	c, s := dialAccept(t, p, 5003)
	mss := c.Info().MSS
	writeThenClose(t, c, data)
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("NoTSO %v: read %d bytes of %d, equal %v: %v", cfg.NoTSO, len(got), len(data), bytes.Equal(got, data), err)
	}
	c.Close()
	s.Close()
	return w.dataSegments(t, mss), mss, p.sa.Counters(), p.a.Counters()
}

// With TSO, TCP hands the 82599 bursts of whole segments and the device
// cuts them: the wire carries the same data segments, byte for byte, as
// with one-MSS sends (sequence numbers, lengths, payloads; flags but PSH,
// which marks where the sender's buffer ran dry and so depends on timing),
// each no longer than the MSS, with valid checksums; the byte stream
// arrives intact, and the trace (a burst is one tcp_seg_sent) validates.
func TestTCPTSOSim(t *testing.T) {
	data := make([]byte, 1<<20+777)
	for i := range data {
		data[i] = byte(i*13 + i>>10)
	}
	off, mssOff, stOff, _ := tsoTransfer(t, stack.Config{NoTSO: true}, data)
	on, mssOn, stOn, tcOn := tsoTransfer(t, stack.Config{}, data)
	if b := stOff.Get(stack.TxTSO); b != 0 {
		t.Errorf("NoTSO: %d TSO bursts", b)
	}
	bursts, tsoSegs := stOn.Get(stack.TxTSO), stOn.Get(stack.TxTSOSegments)
	if bursts < 20 || tsoSegs < 3*bursts || tsoSegs < uint64(len(on))*8/10 || tcOn.Get(tcp.TSOBursts) != bursts {
		t.Errorf("TSO: %d bursts (TCP counted %d) making %d of %d segments; want most segments sent in bursts", bursts, tcOn.Get(tcp.TSOBursts), tsoSegs, len(on))
	}
	t.Logf("TSO: %d bursts, %d segments of %d on the wire; %d segments without TSO", bursts, tsoSegs, len(on), len(off))
	if len(on) == 0 {
		t.Fatal("no data segments captured")
	}
	if mssOn != mssOff {
		t.Fatalf("MSS %d with TSO, %d without", mssOn, mssOff)
	}
	if len(on) != len(off) {
		t.Fatalf("%d data segments on the wire with TSO, %d without", len(on), len(off))
	}
	var stream []byte
	for i := range on {
		a, b := on[i], off[i]
		if a.seq != b.seq || !bytes.Equal(a.payload, b.payload) || a.flags&^header.TCPFlagPSH != b.flags&^header.TCPFlagPSH {
			t.Fatalf("segment %d: with TSO seq +%d, %d bytes, flags %v; without +%d, %d bytes, flags %v", i,
				a.seq, len(a.payload), a.flags, b.seq, len(b.payload), b.flags)
		}
		stream = append(stream, a.payload...)
	}
	if !bytes.Equal(stream, data) {
		t.Fatalf("the wire's segments carry %d bytes, not the %d written", len(stream), len(data))
	}
	if last := on[len(on)-1]; !last.flags.Has(header.TCPFlagPSH) {
		t.Errorf("the last data segment has flags %v, no PSH", last.flags)
	}
}

// TSO under loss, reordering and duplication on the cable: the stream
// arrives intact (retransmissions, SACK recovery and timeouts mixing with
// bursts), and the trace validates.
func TestTCPTSOSimLossy(t *testing.T) {
	for _, seed := range []int64{1, 2} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			f := &ixgbesim.Faults{Seed: seed, Drop: 0.02, Reorder: 0.02, Duplicate: 0.01}
			r := &ixgbesim.Faults{Seed: seed + 100, Drop: 0.02, Reorder: 0.01}
			p := newSimNICPairOpts(t, simOpts{ab: f, ba: r, rec: checkedRecorder(t)})
			c, s := dialAccept(t, p, 5004)
			data := make([]byte, 1<<20)
			for i := range data {
				data[i] = byte(i*31 + i>>12)
			}
			writeThenClose(t, c, data)
			got, err := io.ReadAll(s)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes of %d, equal %v: %v", len(got), len(data), bytes.Equal(got, data), err)
			}
			c.Close()
			s.Close()
			st, tc := p.sa.Counters(), p.a.Counters()
			if st.Get(stack.TxTSO) == 0 || tc.Get(tcp.RetransSegs) == 0 {
				t.Errorf("%d TSO bursts, %d segments retransmitted: want both", st.Get(stack.TxTSO), tc.Get(tcp.RetransSegs))
			}
			t.Logf("%d TSO bursts, %d retransmitted, %d SACK recoveries, %d timeouts", st.Get(stack.TxTSO),
				tc.Get(tcp.RetransSegs), tc.Get(tcp.TCPSACKRecovery), tc.Get(tcp.TCPTimeouts))
		})
	}
}

// TSO against a small receive window that a slow reader closes: bursts
// never pass the peer's window, zero-window probes go out one byte at a
// time, and with Nagle off short writes mix bursts and short segments;
// the stream arrives intact and the trace validates.
func TestTCPTSOSimZeroWindow(t *testing.T) {
	p := newSimNICPairOpts(t, simOpts{rec: checkedRecorder(t), tcp: tcp.Config{RecvBuffer: 16 << 10, RecvBufferMax: 16 << 10}})
	c, s := dialAccept(t, p, 5005)
	c.SetNoDelay(true)
	data := make([]byte, 256<<10)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	go func() {
		for off := 0; off < len(data); off += 5000 {
			c.Write(data[off:min(off+5000, len(data))])
		}
		c.CloseWrite()
	}()
	time.Sleep(1500 * time.Millisecond) // the window closes; the persist timer probes
	var got []byte
	buf := make([]byte, 3000)
	for {
		n, err := s.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < 64<<10 {
			time.Sleep(time.Millisecond)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes of %d, equal %v", len(got), len(data), bytes.Equal(got, data))
	}
	c.Close()
	s.Close()
	st, tc := p.sa.Counters(), p.a.Counters()
	if st.Get(stack.TxTSO) == 0 || tc.Get(tcp.TCPWinProbe) == 0 {
		t.Errorf("%d TSO bursts, %d zero-window probes: want both", st.Get(stack.TxTSO), tc.Get(tcp.TCPWinProbe))
	}
	t.Logf("%d TSO bursts (%d segments), %d zero-window probes, %d segments sent", st.Get(stack.TxTSO), st.Get(stack.TxTSOSegments),
		tc.Get(tcp.TCPWinProbe), tc.Get(tcp.OutSegs))
}

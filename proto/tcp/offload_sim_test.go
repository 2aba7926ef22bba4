package tcp_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/verinic/verinic/proto/stack"
	"github.com/verinic/verinic/proto/tcp"
)

// TCP over two simulated 82599s uses the device's checksums both ways:
// segments go out with the checksum left to the device (TXSM) and arrive
// verified by it (L4CS), and the byte stream is intact. With
// NoTxChecksumOffload the stack computes them itself.
func TestTCPChecksumOffloadSim(t *testing.T) {
	for _, noTx := range []bool{false, true} {
		p := newSimNICPair(t, stack.Config{NoTxChecksumOffload: noTx})
		c, s := dialAccept(t, p, 5001)
		data := make([]byte, 1<<20)
		for i := range data {
			data[i] = byte(i*7 + i>>9)
		}
		writeThenClose(t, c, data)
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("noTx %v: read %d bytes of %d, equal %v: %v", noTx, len(got), len(data), bytes.Equal(got, data), err)
		}
		c.Close()
		s.Close()
		ca, cb := p.sa.Counters(), p.sb.Counters()
		// A TSO burst is one tx_csum_offloaded; the device checksums
		// each of its tx_tso_segments.
		txA := ca.Get(stack.TxCsumOffloaded) - ca.Get(stack.TxTSO) + ca.Get(stack.TxTSOSegments)
		rxB := cb.Get(stack.RxCsumOffloaded)
		if noTx && txA != 0 || !noTx && txA < 500 || rxB < 500 {
			t.Errorf("noTx %v: A sent %d segments with device checksums, B verified %d by the device", noTx, txA, rxB)
		}
		if e := p.b.Counters().Get(tcp.InCsumErrors) + p.a.Counters().Get(tcp.InCsumErrors); e != 0 {
			t.Errorf("noTx %v: %d checksum errors", noTx, e)
		}
		t.Logf("noTx %v: tx_csum_offloaded A %d, rx_csum_offloaded B %d", noTx, txA, rxB)
	}
}

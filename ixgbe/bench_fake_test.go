package ixgbe

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/verinic/verinic/dma"
)

// cpuMHz returns the CPU clock from /proc/cpuinfo ("cpu MHz" of the first
// processor), or 0 when unknown. It is the nominal or current frequency the
// kernel reports, so cycles derived from it are an estimate.
var cpuMHz = sync.OnceValue(func() float64 {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "cpu MHz" {
			mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return mhz
			}
		}
	}
	return 0
})

// BenchmarkDriverForwardFake measures the driver's own cost per forwarded
// packet: RxBatch on a queue whose descriptors the stand-in device completes
// instantly (DD|EOP, 60 bytes), then TxBatch of the same buffers on a TX
// queue whose descriptors it completes instantly, with TX cleaning freeing
// them back to the RX pool. The stand-in does two 32-bit stores per RX
// descriptor and one per TX descriptor, at tail writes. Reported: ns/pkt
// and cycles/pkt (ns x the CPU MHz of /proc/cpuinfo).
func BenchmarkDriverForwardFake(b *testing.B) {
	for _, batch := range []int{1, 4, 16, 32, 64, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			f := newFakeDev(b)
			n, err := New(f, Config{LinkTimeout: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			f.autoRx = true
			f.deliver(0, -1)
			pkts := make([]dma.Packet, batch)
			pool := n.RxPool(0)
			forwarded := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k, _ := n.RxBatch(0, pkts)
				m, _ := n.TxBatch(0, pkts[:k])
				if m < k {
					pool.FreeBatch(pkts[m:k])
				}
				forwarded += m
			}
			b.StopTimer()
			if forwarded == 0 {
				b.Fatal("nothing forwarded")
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(forwarded)
			b.ReportMetric(ns, "ns/pkt")
			if mhz := cpuMHz(); mhz > 0 {
				b.ReportMetric(ns*mhz/1000, "cycles/pkt")
			}
			b.ReportMetric(float64(forwarded)/b.Elapsed().Seconds()/1e6, "Mpps")
		})
	}
}

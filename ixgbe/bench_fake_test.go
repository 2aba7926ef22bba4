package ixgbe

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// threadCPU returns the CPU time the calling OS thread has used
// (getrusage RUSAGE_THREAD, Linux). Unlike wall time it does not count the
// time the thread waited for a CPU, so it stays meaningful on a machine
// shared with other jobs.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD (linux/resource.h)
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDriverForwardFake measures the driver's own cost per forwarded
// packet: RxBatch on a queue whose descriptors the stand-in device completes
// instantly (DD|EOP, 60 bytes), then TxBatch of the same buffers on a TX
// queue whose descriptors it completes instantly, with TX cleaning freeing
// them back to the RX pool. The stand-in does two 32-bit stores per RX
// descriptor and one per TX descriptor with RS (one in 32), at tail writes.
// Reported: ns/pkt (wall), cpu-ns/pkt (CPU time of the benchmark's locked
// OS thread, which excludes time spent waiting for a CPU on a shared
// machine) and cycles/pkt (cpu-ns x the CPU MHz of /proc/cpuinfo; perf's
// cycle counter is not available in this VM).
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
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			cpu0 := threadCPU()
			for i := 0; i < b.N; i++ {
				k, _ := n.RxBatch(0, pkts)
				m, _ := n.TxBatch(0, pkts[:k])
				if m < k {
					pool.FreeBatch(pkts[m:k])
				}
				forwarded += m
			}
			cpu := threadCPU() - cpu0
			b.StopTimer()
			if forwarded == 0 {
				b.Fatal("nothing forwarded")
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(forwarded)
			b.ReportMetric(ns, "ns/pkt")
			cpuNs := float64(cpu.Nanoseconds()) / float64(forwarded)
			b.ReportMetric(cpuNs, "cpu-ns/pkt")
			if mhz := cpuMHz(); mhz > 0 {
				b.ReportMetric(cpuNs*mhz/1000, "cycles/pkt")
			}
			b.ReportMetric(float64(forwarded)/b.Elapsed().Seconds()/1e6, "Mpps")
		})
	}
}

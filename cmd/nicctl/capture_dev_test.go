package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/internal/pktgen"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/header"
	"github.com/verinic/verinic/trace/pcap"
)

// captureDevice records what a device receives: here simB, fed by a driver
// on simA sending generated frames. The file holds exactly the frames sent,
// intact and in order.
func TestCaptureDevice(t *testing.T) {
	domain := ixgbesim.NewDomain()
	simA, err := ixgbesim.New(ixgbesim.Config{Name: "txA", Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	defer simA.Close()
	simB, err := ixgbesim.New(ixgbesim.Config{Name: "capB", Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	defer simB.Close()
	ixgbesim.Connect(simA, simB, nil, nil)
	simA.Start()
	simB.Start()
	defer simA.Stop()
	defer simB.Stop()

	const frames = 500
	path := filepath.Join(t.TempDir(), "dev.pcap")
	o := captureOptions{file: path, queues: 2, frames: frames}
	var out bytes.Buffer
	var res captureResult
	var capErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, capErr = captureDevice(o, simB, &out)
	}()

	nicA, err := ixgbe.New(simA, ixgbe.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer nicA.Close()
	pool, err := dma.NewMempool(nicA.Allocator(), dma.MempoolConfig{Buffers: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release()
	var src header.MAC
	copy(src[:], nicA.MAC())
	// Any destination: the capturing NIC is promiscuous.
	flow := pktgen.DefaultFlow(3, src, header.MAC{2, 0x11, 0x22, 0x33, 0x44, 0x55})
	time.Sleep(100 * time.Millisecond) // let the capturing driver come up
	sizes := pktgen.Mixed(5)
	for seq := uint64(0); seq < frames; {
		p, err := pool.Alloc()
		if err != nil {
			nicA.TxBatch(0, nil) // reclaim
			time.Sleep(time.Millisecond)
			continue
		}
		pktgen.Build(&p, &flow, seq, sizes.Next())
		for {
			n, err := nicA.TxBatch(0, []dma.Packet{p})
			if err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		seq++
		if seq%64 == 0 {
			time.Sleep(2 * time.Millisecond) // stay within the receiver's rings
		}
	}
	wg.Wait()
	if capErr != nil {
		t.Fatalf("capture: %v\n%s", capErr, out.String())
	}
	if res.received != frames || res.captured != frames {
		t.Fatalf("captured %d (received %d), want %d\n%s", res.captured, res.received, frames, out.String())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := pktgen.NewTracker()
	for {
		fr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tr.Observe(fr.Data)
	}
	if tr.InOrder != frames {
		t.Fatalf("pcap holds %d intact in-order frames of %d: %+v", tr.InOrder, frames, tr)
	}
}

// A capture with a duration ends on its own even when nothing arrives.
func TestCaptureDeviceDuration(t *testing.T) {
	dev, err := openSimDevice("sim7")
	if err != nil {
		t.Fatal(err)
	}
	defer closeDevice(dev)
	o := captureOptions{file: filepath.Join(t.TempDir(), "idle.pcap"), queues: 1, duration: 200 * time.Millisecond}
	var out bytes.Buffer
	res, err := captureDevice(o, dev, &out)
	if err != nil || res.captured != 0 {
		t.Fatalf("idle capture: %+v, %v\n%s", res, err, out.String())
	}
}

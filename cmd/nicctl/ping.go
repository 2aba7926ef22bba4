package main

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/verinic/verinic/proto/icmp"
)

func init() {
	register(&command{
		name:    "ping",
		summary: "send ICMP echo requests from the stack and print the replies, like iputils ping",
		usage:   "[-c COUNT] [-s SIZE] [-i INTERVAL] [-W TIMEOUT] (--tap NAME | --dev DEVICE) --ip ADDR/LEN [--host-ip ADDR/LEN] [--gateway ADDR] DESTINATION",
		run:     runPing,
	})
}

type pingStats struct {
	mu                  sync.Mutex
	sent                map[uint16]time.Time
	transmitted, recv   int
	dups                int
	min, max, sum, sum2 float64 // milliseconds
}

func runPing(args []string) error {
	var f stackFlags
	var count, size int
	var interval, timeout time.Duration
	fs := newFlagSet("ping")
	f.register(fs, true)
	fs.IntVar(&count, "c", 0, "stop after COUNT replies' worth of requests (0: until interrupted)")
	fs.IntVar(&size, "s", 56, "data bytes per request (ICMP payload)")
	fs.DurationVar(&interval, "i", time.Second, "interval between requests")
	fs.DurationVar(&timeout, "W", time.Second, "how long to wait for replies after the last request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errUsage
	}
	dst, err := netip.ParseAddr(fs.Arg(0))
	if err != nil || !dst.Is4() {
		return fmt.Errorf("%q: not an IPv4 address", fs.Arg(0))
	}
	if size < 0 || size > icmp.MaxEchoData {
		return fmt.Errorf("-s %d: data size must be 0..%d", size, icmp.MaxEchoData)
	}
	if interval <= 0 {
		return fmt.Errorf("-i %v: the interval must be positive", interval)
	}
	r, err := startStack(&f)
	if err != nil {
		return err
	}
	defer r.Close()
	echo, err := r.st.NewEcho(0)
	if err != nil {
		return err
	}
	defer echo.Close()

	fmt.Printf("PING %s (%s) %d(%d) bytes of data.\n", dst, dst, size, size+28)
	st := &pingStats{sent: map[uint16]time.Time{}, min: math.Inf(1)}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, icmp.MaxEchoData)
		for {
			n, rep, err := echo.Recv(buf)
			if err != nil {
				return
			}
			now := time.Now()
			st.mu.Lock()
			t0, ok := st.sent[rep.Seq]
			if !ok {
				st.dups++
				st.mu.Unlock()
				continue
			}
			delete(st.sent, rep.Seq)
			ms := float64(now.Sub(t0)) / float64(time.Millisecond)
			st.recv++
			st.min, st.max = math.Min(st.min, ms), math.Max(st.max, ms)
			st.sum += ms
			st.sum2 += ms * ms
			st.mu.Unlock()
			fmt.Printf("%d bytes from %s: icmp_seq=%d ttl=%d time=%.3f ms\n", n+8, rep.From, rep.Seq, rep.TTL, ms)
		}
	}()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i + 8) // iputils' fill pattern after its timestamp
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
loop:
	for seq := uint16(1); count == 0 || int(seq) <= count; seq++ {
		st.mu.Lock()
		st.sent[seq] = time.Now()
		st.transmitted++
		st.mu.Unlock()
		if err := echo.Send(dst, seq, data); err != nil {
			fmt.Fprintf(os.Stderr, "ping: sendmsg: %v\n", err)
		}
		if count != 0 && int(seq) == count {
			break
		}
		select {
		case <-sig:
			break loop
		case <-tick.C:
		}
	}
	// Wait for the last replies.
	wait := time.NewTimer(timeout)
	for {
		st.mu.Lock()
		outstanding := len(st.sent)
		st.mu.Unlock()
		if outstanding == 0 {
			break
		}
		select {
		case <-wait.C:
		case <-sig:
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	echo.Close()
	<-done

	st.mu.Lock()
	defer st.mu.Unlock()
	loss := 0
	if st.transmitted > 0 {
		loss = 100 * (st.transmitted - st.recv) / st.transmitted
	}
	fmt.Printf("\n--- %s ping statistics ---\n", dst)
	fmt.Printf("%d packets transmitted, %d received, %d%% packet loss, time %dms\n", st.transmitted, st.recv, loss, time.Since(start).Milliseconds())
	if st.recv > 0 {
		avg := st.sum / float64(st.recv)
		mdev := math.Sqrt(math.Max(0, st.sum2/float64(st.recv)-avg*avg))
		fmt.Printf("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", st.min, avg, st.max, mdev)
		return nil
	}
	return errors.New("no reply")
}

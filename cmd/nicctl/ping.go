package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
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
	interval, timeout := seconds(time.Second), seconds(time.Second)
	fs := newFlagSet("ping")
	f.register(fs, true)
	fs.IntVar(&count, "c", 0, "stop after COUNT requests (0: until interrupted)")
	fs.IntVar(&size, "s", 56, fmt.Sprintf("data bytes per request (ICMP payload), 0..%d", icmp.MaxEchoData))
	fs.Var(&interval, "i", "seconds between requests, as iputils (0.2) or a Go duration (200ms); more than 0")
	fs.Var(&timeout, "W", "seconds to wait for replies after the last request, as iputils (1) or a Go duration (500ms)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("name one destination: an IPv4 address or a host name")
	}
	if count < 0 {
		return usagef("-c %d: want a count of 1 or more (0: until interrupted)", count)
	}
	if size < 0 || size > icmp.MaxEchoData {
		return usagef("-s %d: want 0..%d data bytes", size, icmp.MaxEchoData)
	}
	if interval <= 0 {
		return usagef("-i %v: want a positive interval, e.g. -i 0.2", time.Duration(interval))
	}
	if timeout < 0 {
		return usagef("-W %v: want a time of 0 or more seconds", time.Duration(timeout))
	}
	if _, err := f.spec(true); err != nil {
		return err
	}
	dst, err := resolvePingTarget(fs.Arg(0))
	if err != nil {
		return err
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

	fmt.Printf("PING %s (%s) %d(%d) bytes of data.\n", fs.Arg(0), dst, size, size+28)
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
	tick := time.NewTicker(time.Duration(interval))
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
	wait := time.NewTimer(time.Duration(timeout))
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

// resolvePingTarget turns the destination argument, an IPv4 address or a
// host name, into an address. Names are looked up by the host's resolver
// (/etc/hosts, DNS through the kernel's network), not through the stack.
func resolvePingTarget(name string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(name); err == nil {
		if !a.Is4() {
			return a, fmt.Errorf("%s: the stack speaks IPv4 only", name)
		}
		return a, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: cannot resolve the name to an IPv4 address: %w", name, err)
	}
	return addrs[0].Unmap(), nil
}

// seconds is a duration flag that takes iputils' plain seconds (0.2) as
// well as Go durations (200ms).
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }

func (s *seconds) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
			return fmt.Errorf("%q: not a number of seconds", v)
		}
		*s = seconds(f * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q: want seconds (0.2) or a duration (200ms)", v)
	}
	*s = seconds(d)
	return nil
}

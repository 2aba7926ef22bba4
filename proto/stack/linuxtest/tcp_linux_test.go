//go:build linux

package linuxtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/gonet"
	"github.com/verinic/verinic/proto/tcp"
)

// TCP against Linux: the stack's TCP (proto/tcp, net/http through
// proto/gonet) on a simulated 82599 wired to the kernel of a private
// namespace, over TAP and over veth + AF_PACKET, with curl, wrk, nc, socat,
// ss, hping3 and nmap as the Linux side. Every address is 10.9.x.x inside
// the test's own namespace; every command runs under a context deadline
// (hang protection only: no test asserts a duration).
//
// Subnets: 10.9.30-31 curl, 32-33 wrk, 34-35 nc, 36-37 ss, 38-39 stack as
// client, 40-41 SYN flood, 42-43 nmap.

// 1. curl GET and POST of 1 KB … 100 MB against net/http on the stack,
// SHA-256 checked end to end; the 1 KB and 1 MB transfers are traced.
func TestLinuxTCPCurl(t *testing.T) {
	requireTool(t, "curl", "curl")
	wires(t, 30, func(t *testing.T, kind string, subnet int) {
		// Room for the 1 KB and 1 MB transfers (about 10 000 events and
		// 2.1 MB of data); the 10 MB and 100 MB ones overflow it and are
		// not traced.
		rec := newTCPRecorder(100_000, 4<<20)
		p := newTCPPeer(t, kind, subnet, tcp.Config{Recorder: rec}, true)
		p.serveHTTP(t, 80, 0)
		dir := t.TempDir()
		url := fmt.Sprintf("http://%v", p.stackIP)
		type sample struct {
			port uint16
			get  bool
			n    int64
		}
		var sampled []sample
		port := uint16(41000)
		for _, n := range []int64{1 << 10, 1 << 20, 10 << 20, 100 << 20} {
			limit := 60*time.Second + time.Duration(n>>20)*time.Second // 1 MB/s at worst
			port++
			start := time.Now()
			p.curlGet(t, url, n, port, limit, dir)
			t.Logf("GET %9d B: %v, %s", n, time.Since(start).Round(time.Millisecond), rate(n, time.Since(start)))
			if n <= 1<<20 {
				sampled = append(sampled, sample{port, true, n})
			}

			file := filepath.Join(dir, fmt.Sprintf("post-%d", n))
			f, err := os.Create(file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, body(n)); err != nil {
				t.Fatal(err)
			}
			f.Close()
			port++
			start = time.Now()
			p.curlPost(t, url, file, n, port, limit)
			t.Logf("POST %8d B: %v, %s", n, time.Since(start).Round(time.Millisecond), rate(n, time.Since(start)))
			os.Remove(file)
			if n <= 1<<20 {
				sampled = append(sampled, sample{port, false, n})
			}
		}
		t.Logf("stack TCP counters: %s", tcpCounters(p.tcp))
		// Every client has gone: the server's connections close and give
		// their memory back (bounded wait: FINs and their ACKs in flight).
		p.waitNoConns(t, 30*time.Second)
		p.close(t)
		evs := saveAndCheckTrace(t, rec, "curl-"+kind, "TestLinuxTCPCurl/"+kind+": curl GET/POST of 1 KB and 1 MB against net/http on the stack")
		// What the stack's application wrote (GET) and read (POST) is what
		// curl received and sent: the body is the end of the stream.
		for _, s := range sampled {
			cs := streamOf(t, evs, s.port, true)
			if s.get {
				checkSuffix(t, fmt.Sprintf("GET %d, conn %d written", s.n, cs.id), cs.written, bodyBytes(s.n))
			} else {
				checkSuffix(t, fmt.Sprintf("POST %d, conn %d read", s.n, cs.id), cs.read, bodyBytes(s.n))
			}
		}
	})
}

// hashCounter hashes and counts what is written to it.
type hashCounter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func newHashCounter() *hashCounter { return &hashCounter{h: sha256.New()} }

func (w *hashCounter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	return w.h.Write(b)
}

func (w *hashCounter) sum() string { return hex.EncodeToString(w.h.Sum(nil)) }

// curlGet fetches /bytes/n from local port port and checks status, length
// and SHA-256 against both the header and the generator.
func (p *peer) curlGet(t *testing.T, url string, n int64, port uint16, limit time.Duration, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit+10*time.Second)
	defer cancel()
	hdrs := filepath.Join(dir, fmt.Sprintf("get-%d.headers", n))
	cmd := p.cmdIn(ctx, "curl", "-sS", "--fail", "--max-time", fmt.Sprint(int(limit.Seconds())),
		"--local-port", fmt.Sprint(port), "-D", hdrs, "-o", "-", fmt.Sprintf("%s/bytes/%d", url, n))
	out := newHashCounter()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl GET %d: %v: %s\nstack TCP: %s", n, err, stderr.String(), tcpCounters(p.tcp))
	}
	h, err := os.ReadFile(hdrs)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?i)\r\nx-sha256: ([0-9a-f]{64})\r\n`).FindSubmatch(h)
	if !bytes.HasPrefix(h, []byte("HTTP/1.1 200")) || m == nil {
		t.Fatalf("curl GET %d: response headers %q", n, h)
	}
	got, want := out.sum(), bodySum(n)
	if out.n != n || got != want || string(m[1]) != want {
		t.Fatalf("curl GET %d: received %d bytes with sha256 %s; header says %s, generator %s", n, out.n, got, m[1], want)
	}
}

// curlPost posts the file (body(n)) to /sha256 and checks the server's hash.
func (p *peer) curlPost(t *testing.T, url, file string, n int64, port uint16, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit+10*time.Second)
	defer cancel()
	// -T streams the file with a Content-Length; "Expect:" drops curl's
	// 100-continue wait.
	cmd := p.cmdIn(ctx, "curl", "-sS", "--fail", "--max-time", fmt.Sprint(int(limit.Seconds())),
		"--local-port", fmt.Sprint(port), "-X", "POST", "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
		"-T", file, url+"/sha256")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl POST %d: %v: %s\nstack TCP: %s", n, err, stderr.String(), tcpCounters(p.tcp))
	}
	if got, want := strings.TrimSpace(stdout.String()), bodySum(n); got != want {
		t.Fatalf("curl POST %d: the stack hashed %q, curl sent %s", n, got, want)
	}
}

// 2. wrk keep-alive load for 10 s: no socket errors, no non-2xx responses,
// no timeouts.
func TestLinuxTCPWrk(t *testing.T) {
	requireTool(t, "wrk", "wrk")
	wires(t, 32, func(t *testing.T, kind string, subnet int) {
		p := newTCPPeer(t, kind, subnet, tcp.Config{}, true)
		p.serveHTTP(t, 80, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := p.ns.Exec(ctx, "wrk", "-t2", "-c16", "-d10s", "--timeout", "5s", "--latency",
			fmt.Sprintf("http://%v/bytes/1024", p.stackIP))
		t.Logf("wrk:\n%s", out)
		t.Logf("stack TCP counters: %s", tcpCounters(p.tcp))
		if err != nil {
			t.Fatalf("wrk: %v", err)
		}
		s := string(out)
		if strings.Contains(s, "Socket errors") {
			t.Errorf("wrk reports socket errors (connect, read, write, timeout)")
		}
		if strings.Contains(s, "Non-2xx or 3xx responses") {
			t.Errorf("wrk reports non-2xx/3xx responses")
		}
		m := regexp.MustCompile(`(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read`).FindStringSubmatch(s)
		rps := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindStringSubmatch(s)
		if m == nil || rps == nil {
			t.Fatalf("cannot parse wrk's output")
		}
		if n, _ := strconv.Atoi(m[1]); n < 100 {
			t.Errorf("only %d requests completed in 10 s", n)
		}
		t.Logf("%s: %s requests, %s requests/s", kind, m[1], rps[1])
		if opens := p.tcp.Counters().Get(tcp.PassiveOpens); opens > 32 {
			t.Errorf("%d connections accepted for 16 keep-alive clients", opens)
		}
	})
}

// netcatSize is the bulk size per direction for TestLinuxTCPNetcat.
const netcatSize = 1 << 30

// 3. nc: 1 GB from Linux to the stack's listener, and 1 GB from the stack
// to Linux's nc -l, SHA-256 equal on both sides.
func TestLinuxTCPNetcat(t *testing.T) {
	requireTool(t, "nc", "netcat-openbsd")
	wires(t, 34, func(t *testing.T, kind string, subnet int) {
		p := newTCPPeer(t, kind, subnet, tcp.Config{}, true)
		const size = netcatSize
		limit := 5 * time.Minute

		t.Run("LinuxToStack", func(t *testing.T) {
			ln, err := p.tcp.Listen(netip.AddrPortFrom(p.stackIP, 5001), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			type result struct {
				n   int64
				sum string
				err error
			}
			res := make(chan result, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					res <- result{err: err}
					return
				}
				defer c.Close()
				w := newHashCounter()
				_, err = io.Copy(w, c)
				res <- result{w.n, w.sum(), err}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			sent := newHashCounter()
			cmd := p.cmdIn(ctx, "nc", "-N", "-w", "30", p.stackIP.String(), "5001")
			cmd.Stdin = io.TeeReader(body(size), sent)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			if err := cmd.Run(); err != nil {
				t.Fatalf("nc: %v: %s\nstack TCP: %s", err, stderr.String(), tcpCounters(p.tcp))
			}
			var r result
			select {
			case r = <-res:
			case <-ctx.Done():
				t.Fatalf("the stack's reader did not see the end of the stream: %s", tcpCounters(p.tcp))
			}
			d := time.Since(start)
			if r.err != nil || r.n != size || sent.n != size || r.sum != sent.sum() {
				t.Fatalf("nc sent %d bytes (sha256 %s), the stack read %d (sha256 %s), err %v", sent.n, sent.sum(), r.n, r.sum, r.err)
			}
			t.Logf("Linux nc -> stack: %d bytes in %v, %s; sha256 %s on both sides", size, d.Round(time.Millisecond), rate(size, d), r.sum)
		})

		t.Run("StackToLinux", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			got := newHashCounter()
			var stderr bytes.Buffer
			cmd := p.cmdIn(ctx, "nc", "-l", "-d", "-n", p.kernelIP.String(), "5002")
			cmd.Stdout, cmd.Stderr = got, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			p.waitListen(t, 5002)
			c, err := p.tcp.Dial(ctx, netip.AddrPort{}, netip.AddrPortFrom(p.kernelIP, 5002))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sent := newHashCounter()
			start := time.Now()
			if _, err := io.Copy(c, io.TeeReader(body(size), sent)); err != nil {
				t.Fatalf("write: %v (%s)", err, tcpCounters(p.tcp))
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("nc -l: %v: %s (received %d bytes)", err, stderr.String(), got.n)
			}
			d := time.Since(start)
			// nc closed after the stack's FIN: the stack sees the end of
			// the stream.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("after nc exited: read %d, %v; want EOF", n, err)
			}
			if got.n != size || got.sum() != sent.sum() {
				t.Fatalf("the stack sent %d bytes (sha256 %s), nc received %d (sha256 %s)", sent.n, sent.sum(), got.n, got.sum())
			}
			t.Logf("stack -> Linux nc -l: %d bytes in %v, %s; sha256 %s on both sides", size, d.Round(time.Millisecond), rate(size, d), got.sum())
		})
		t.Logf("stack TCP counters: %s", tcpCounters(p.tcp))
	})
}

// ssConn is one connection as ss -tin shows it.
type ssConn struct {
	local, peer string
	info        string
}

// parseSS reads ss -Htino's output: a line with the queues, the addresses
// and the timer (the state column is absent under a state filter), then an
// indented line of TCP info.
func parseSS(out string) []ssConn {
	var conns []ssConn
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(conns) > 0 {
				conns[len(conns)-1].info += " " + strings.TrimSpace(line)
			}
			continue
		}
		var addrs []string
		for _, f := range strings.Fields(line) {
			if _, err := netip.ParseAddrPort(f); err == nil {
				addrs = append(addrs, f)
			}
		}
		if len(addrs) == 2 {
			conns = append(conns, ssConn{local: addrs[0], peer: addrs[1]})
		}
	}
	return conns
}

// 4. ss -tin inside the namespace, during a transfer, shows window
// scaling, SACK and timestamps negotiated with the stack, with the shifts
// the stack itself reports.
func TestLinuxTCPSSOptions(t *testing.T) {
	requireTool(t, "ss", "iproute2")
	wires(t, 36, func(t *testing.T, kind string, subnet int) {
		p := newTCPPeer(t, kind, subnet, tcp.Config{}, false)
		ln, err := p.tcp.Listen(netip.AddrPortFrom(p.stackIP, 5003), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan *tcp.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
			io.Copy(io.Discard, c)
		}()
		// The Linux end is a kernel socket of the namespace, writing until
		// told to stop.
		var kc net.Conn
		if err := p.ns.Do(func() (err error) {
			kc, err = net.DialTimeout("tcp4", netip.AddrPortFrom(p.stackIP, 5003).String(), 10*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := bytes.Repeat([]byte("verinic "), 8192)
			kc.SetWriteDeadline(time.Now().Add(2 * time.Minute))
			for !stop.Load() {
				if _, err := kc.Write(buf); err != nil {
					return
				}
			}
		}()
		defer func() {
			stop.Store(true)
			kc.Close()
			wg.Wait()
		}()
		var sc *tcp.Conn
		select {
		case sc = <-accepted:
		case <-time.After(10 * time.Second):
			t.Fatal("the stack accepted nothing in 10 s")
		}
		if sc == nil {
			t.Fatal("accept failed")
		}
		defer sc.Close()
		var conn ssConn
		for i := 0; ; i++ {
			// -o: iproute2 6.1 prints ts and sack only with the
			// options shown.
			out, err := p.exec(t, 10*time.Second, "ss", "-Htino", "state", "established", "dst", p.stackIP.String())
			if err != nil {
				t.Fatalf("ss: %v: %s", err, out)
			}
			if cs := parseSS(out); len(cs) == 1 && cs[0].peer == netip.AddrPortFrom(p.stackIP, 5003).String() {
				conn = cs[0]
				break
			} else if i == 50 {
				t.Fatalf("ss -tin shows no single connection to the stack:\n%s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("ss -tin: %s -> %s:%s", conn.local, conn.peer, conn.info)
		fields := strings.Fields(conn.info)
		has := func(f string) bool {
			for _, x := range fields {
				if x == f {
					return true
				}
			}
			return false
		}
		if !has("ts") {
			t.Errorf("ss: no timestamps (ts) on the connection to the stack")
		}
		if !has("sack") {
			t.Errorf("ss: no SACK on the connection to the stack")
		}
		m := regexp.MustCompile(`\bwscale:(\d+),(\d+)\b`).FindStringSubmatch(conn.info)
		if m == nil {
			t.Fatalf("ss: no window scaling on the connection to the stack")
		}
		info := sc.Info()
		t.Logf("stack: wscale send %d receive %d, sack %v, ts %v, mss %d, cwnd %d, srtt %v", info.WScale[0], info.WScale[1], info.SACK, info.Timestamps, info.MSS, info.Cwnd, info.SRTT)
		// ss prints snd_wscale (the shift the stack announced, its receive
		// shift) then rcv_wscale (Linux's own, the stack's send shift).
		if m[1] != strconv.Itoa(info.WScale[1]) || m[2] != strconv.Itoa(info.WScale[0]) {
			t.Errorf("ss says wscale:%s,%s; the stack says it receives with shift %d and sends with %d", m[1], m[2], info.WScale[1], info.WScale[0])
		}
		if !info.SACK || !info.Timestamps || info.WScale[0] < 0 {
			t.Errorf("the stack did not negotiate every option: %+v", info)
		}
		stop.Store(true)
	})
}

// 5. The stack as a client of Linux servers: socat echoes 4 MB back
// (connect, transfer, half-close, close), and a closed Linux port refuses
// with RST (ECONNREFUSED).
func TestLinuxTCPStackClient(t *testing.T) {
	requireTool(t, "socat", "socat")
	wires(t, 38, func(t *testing.T, kind string, subnet int) {
		rec := newTCPRecorder(200_000, 20<<20)
		// A short TIME-WAIT (2*MSL is configurable, RFC 9293 3.4.2), so
		// that the active closer's connection ends by its timer before
		// the stack closes and the trace shows the whole life.
		p := newTCPPeer(t, kind, subnet, tcp.Config{Recorder: rec, TimeWait: 500 * time.Millisecond}, false)
		const size = 4 << 20
		msg := bodyBytes(size)
		var echoPort uint16

		t.Run("SocatEcho", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var stderr bytes.Buffer
			srv := p.cmdIn(ctx, "socat", "-T", "60", fmt.Sprintf("TCP4-LISTEN:7000,bind=%v,reuseaddr", p.kernelIP), "EXEC:cat")
			srv.Stderr = &stderr
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				srv.Process.Kill()
				srv.Wait()
			}()
			p.waitListen(t, 7000)
			c, err := gonet.DialTCP(ctx, p.tcp, nil, &net.TCPAddr{IP: p.kernelIP.AsSlice(), Port: 7000})
			if err != nil {
				t.Fatal(err)
			}
			echoPort = uint16(c.LocalAddr().(*net.TCPAddr).Port)
			c.SetDeadline(time.Now().Add(90 * time.Second))
			werr := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := c.Write(msg)
				if err == nil {
					err = c.CloseWrite()
				}
				werr <- err
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read the echo: %v after %d bytes (stack TCP: %s; socat: %s)", err, len(got), tcpCounters(p.tcp), stderr.String())
			}
			if err := <-werr; err != nil {
				t.Fatalf("write: %v", err)
			}
			d := time.Since(start)
			if !bytes.Equal(got, msg) {
				t.Fatalf("socat echoed %d bytes (sha256 %x), the stack sent %d (sha256 %x)", len(got), sha256.Sum256(got), len(msg), sha256.Sum256(msg))
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := srv.Wait(); err != nil {
				t.Errorf("socat: %v: %s", err, stderr.String())
			}
			t.Logf("socat echo of %d bytes through the stack's active open: %v, %s each way", size, d.Round(time.Millisecond), rate(size, d))
		})

		t.Run("RefusedByLinux", func(t *testing.T) {
			rsts := p.tcp.Counters().Get(tcp.AttemptFails)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := p.tcp.Dial(ctx, netip.AddrPort{}, netip.AddrPortFrom(p.kernelIP, 9))
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial a closed Linux port: %v, want ECONNREFUSED", err)
			}
			_, err = gonet.DialTCP(ctx, p.tcp, nil, &net.TCPAddr{IP: p.kernelIP.AsSlice(), Port: 9})
			var se *os.SyscallError
			if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &se) || se.Syscall != "connect" {
				t.Fatalf("gonet.DialTCP to a closed Linux port: %v, want connect: connection refused", err)
			}
			if n := p.tcp.Counters().Get(tcp.AttemptFails) - rsts; n != 2 {
				t.Errorf("AttemptFails grew by %d, want 2", n)
			}
		})
		t.Logf("stack TCP counters: %s", tcpCounters(p.tcp))

		t.Run("PcapAndTrace", func(t *testing.T) {
			if echoPort == 0 {
				t.Skip("the echo did not run")
			}
			p.waitNoConns(t, 30*time.Second)
			p.close(t)
			if _, err := os.Stat(p.pcapPath); err == nil && hasTool("tshark") {
				checkPcap(t, p.pcapPath, int(p.pcap.Frames()))
			}
			evs := saveAndCheckTrace(t, rec, "client-"+kind, "TestLinuxTCPStackClient/"+kind+": socat echo of 4 MB")
			cs := streamOf(t, evs, echoPort, false)
			if !bytes.Equal(cs.written, msg) || !bytes.Equal(cs.read, msg) || !cs.eof || !cs.closed {
				t.Fatalf("trace of conn %d: wrote %d bytes, read %d, EOF %v, closed %v; want %d each way, EOF, closed",
					cs.id, len(cs.written), len(cs.read), cs.eof, cs.closed, len(msg))
			}
			t.Logf("trace of conn %d: %d writes and %d reads, the bytes equal what socat echoed", cs.id, cs.writes, cs.nreads)
		})
	})
}

func hasTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// 6. A SYN flood from hping3 (the namespace's own address, hping3's
// incrementing source ports, only to the stack) while curl clients keep
// fetching a page: the listener's small backlog fills, SYN cookies answer,
// every fetch succeeds, and TCP memory and connections stay under the caps.
func TestLinuxTCPSynFlood(t *testing.T) {
	requireTool(t, "hping3", "hping3")
	requireTool(t, "curl", "curl")
	wires(t, 40, func(t *testing.T, kind string, subnet int) {
		cfg := tcp.Config{MemoryLimit: 8 << 20, MaxConnections: 64}
		p := newTCPPeer(t, kind, subnet, cfg, true)
		p.serveHTTP(t, 80, 4) // a backlog of 4: cookies from the fifth half-open connection on
		// hping3 sweeps every source port of the namespace's address many
		// times a second, so the clients use a second address of the
		// namespace: a flood SYN on a client's 4-tuple would otherwise
		// meet its connection (challenge ACKs, or a cookie SYN-ACK the
		// client's kernel answers with an ACK no cookie explains, and a
		// RST), which is the flood hitting the client, not the server.
		clientIP := netip.AddrFrom4([4]byte{10, 9, byte(subnet), 3})
		if out, err := p.ns.IP("addr", "add", clientIP.String()+"/24", "dev", p.ifname); err != nil {
			t.Fatalf("%v: %s", err, out)
		}

		// Sample the caps while the flood runs.
		var maxMem, maxConns atomic.Int64
		stopSampling := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				if m := p.tcp.MemoryInUse(); m > maxMem.Load() {
					maxMem.Store(m)
				}
				if c := int64(p.tcp.Counters().Get(tcp.CurrConns)); c > maxConns.Load() {
					maxConns.Store(c)
				}
				select {
				case <-stopSampling:
					return
				case <-tick.C:
				}
			}
		}()

		// hping3 --flood ignores -c: the flood is bounded by killing it
		// after 5 s (and the context).
		const floodFor = 5 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), floodFor)
		defer cancel()
		var hout bytes.Buffer
		flood := p.cmdIn(ctx, "hping3", "-S", "-p", "80", "--flood", "-q", "-c", "200000", p.stackIP.String())
		flood.Stdout, flood.Stderr = &hout, &hout
		if err := flood.Start(); err != nil {
			t.Fatal(err)
		}
		floodDone := make(chan struct{})
		go func() {
			flood.Wait()
			close(floodDone)
		}()

		// Two curl clients fetch until the flood ends (at least 3 each).
		var wg sync.WaitGroup
		var ok, failed atomic.Int64
		var failMu sync.Mutex
		var failures []string
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 1000; i++ {
					select {
					case <-floodDone:
						if i >= 3 {
							return
						}
					default:
					}
					cctx, ccancel := context.WithTimeout(context.Background(), 40*time.Second)
					out, err := p.cmdIn(cctx, "curl", "-sS", "--fail", "--max-time", "30", "-o", "/dev/null", "--interface", clientIP.String(),
						"-w", "%{http_code} %{time_connect}", fmt.Sprintf("http://%v/bytes/1024", p.stackIP)).CombinedOutput()
					ccancel()
					if err != nil || !strings.HasPrefix(string(out), "200 ") {
						failed.Add(1)
						failMu.Lock()
						failures = append(failures, fmt.Sprintf("%v: %s", err, out))
						failMu.Unlock()
						continue
					}
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		<-floodDone
		close(stopSampling)
		<-sampled
		c := p.tcp.Counters()
		t.Logf("hping3: %s", strings.TrimSpace(hout.String()))
		t.Logf("%d curl fetches during the flood, %d failed; peak TCP memory %d B (limit %d), peak connections %d (limit %d)",
			ok.Load(), failed.Load(), maxMem.Load(), cfg.MemoryLimit, maxConns.Load(), cfg.MaxConnections)
		t.Logf("stack TCP counters: %s", tcpCounters(p.tcp))
		t.Logf("stack: %s", nonZero(p.st.Counters()))
		if failed.Load() > 0 {
			t.Errorf("curl failed %d times during the flood: %s", failed.Load(), strings.Join(failures, "; "))
		}
		if ok.Load() < 6 {
			t.Errorf("only %d fetches succeeded", ok.Load())
		}
		if maxMem.Load() > cfg.MemoryLimit {
			t.Errorf("TCP memory peaked at %d bytes, over the %d limit", maxMem.Load(), cfg.MemoryLimit)
		}
		if p.pcap != nil {
			p.close(t)
		}
		if maxConns.Load() > int64(cfg.MaxConnections) {
			t.Errorf("%d connections at the peak, over the %d cap", maxConns.Load(), cfg.MaxConnections)
		}
		if c.Get(tcp.SyncookiesSent) == 0 {
			t.Errorf("no SYN cookie sent: the flood never filled the backlog of 4")
		}
		if c.Get(tcp.PassiveOpens) == 0 {
			t.Errorf("no connection accepted")
		}
	})
}

// nmapRun is the part of nmap -oX's report the test reads.
type nmapRun struct {
	Hosts []struct {
		Ports []struct {
			Protocol string `xml:"protocol,attr"`
			PortID   int    `xml:"portid,attr"`
			State    struct {
				State  string `xml:"state,attr"`
				Reason string `xml:"reason,attr"`
			} `xml:"state"`
		} `xml:"ports>port"`
	} `xml:"host"`
}

// 7. nmap -sS from the namespace: the stack's listening ports are open
// (SYN-ACK), the others closed (RST), none filtered.
func TestLinuxTCPNmap(t *testing.T) {
	requireTool(t, "nmap", "nmap")
	wires(t, 42, func(t *testing.T, kind string, subnet int) {
		p := newTCPPeer(t, kind, subnet, tcp.Config{}, false)
		open := []int{22, 80, 8080}
		closed := []int{9, 81, 443}
		for _, port := range open {
			ln, err := p.tcp.Listen(netip.AddrPortFrom(p.stackIP, uint16(port)), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
		}
		var ports []string
		for _, port := range append(append([]int{}, open...), closed...) {
			ports = append(ports, strconv.Itoa(port))
		}
		out, err := p.exec(t, 90*time.Second, "nmap", "-sS", "-Pn", "-n", "--max-retries", "2", "--host-timeout", "60s",
			"-p", strings.Join(ports, ","), "-oX", "-", p.stackIP.String())
		if err != nil {
			t.Fatalf("nmap: %v\n%s", err, out)
		}
		// ip netns exec prints nothing of its own; the XML is all of out.
		var run nmapRun
		if err := xml.Unmarshal([]byte(out[strings.Index(out, "<?xml"):]), &run); err != nil || len(run.Hosts) != 1 {
			t.Fatalf("nmap -oX: %v (%d hosts)\n%s", err, len(run.Hosts), out)
		}
		got := map[int]string{}
		for _, pt := range run.Hosts[0].Ports {
			got[pt.PortID] = pt.State.State + " (" + pt.State.Reason + ")"
			t.Logf("nmap: %d/%s %s, reason %s", pt.PortID, pt.Protocol, pt.State.State, pt.State.Reason)
		}
		for _, port := range open {
			if got[port] != "open (syn-ack)" {
				t.Errorf("port %d: nmap says %q, want open (syn-ack)", port, got[port])
			}
		}
		for _, port := range closed {
			if got[port] != "closed (reset)" {
				t.Errorf("port %d: nmap says %q, want closed (reset)", port, got[port])
			}
		}
		if len(got) != len(open)+len(closed) {
			t.Errorf("nmap reported %d ports, scanned %d", len(got), len(open)+len(closed))
		}
		if rsts := p.tcp.Counters().Get(tcp.OutRsts); rsts < uint64(len(closed)) {
			t.Errorf("the stack counted %d RSTs for %d closed ports", rsts, len(closed))
		}
		t.Logf("stack TCP counters: %s", tcpCounters(p.tcp))
		p.close(t)
		if hasTool("tshark") {
			checkPcap(t, p.pcapPath, int(p.pcap.Frames()))
		}
	})
}

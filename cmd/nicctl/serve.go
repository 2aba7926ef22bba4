package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/gonet"
)

func init() {
	register(&command{
		name:    "serve",
		summary: "HTTP file and echo server on the stack: on a simulated 82599 wired to a TAP device, a real 82599 (VFIO), or --dev sim (two simulated NICs and a built-in client; no root)",
		usage:   "(--tap NAME --ip ADDR/LEN [--host-ip ADDR/LEN] | --dev PCI-ADDRESS --ip ADDR/LEN | --dev sim [--ip ADDR/LEN] [--fetch-size BYTES]) [--port PORT] [--udp-echo PORT] [--dir DIR] [--gateway ADDR] [--pcap FILE] [--trace FILE [--trace-events N] [--trace-data BYTES]] [--stats] [--conns] [--duration D]",
		run:     func(args []string) error { return runServe(args, os.Stdout) },
	})
}

// maxFetchSize bounds serve --dev sim's --fetch-size.
const maxFetchSize = 1 << 30

type serveOptions struct {
	port      int
	udpEcho   int
	dir       string
	fetchSize int64
	watch     watchOptions
}

func runServe(args []string, out io.Writer) error {
	var f stackFlags
	var o serveOptions
	var tf traceFlags
	fs := newFlagSet("serve")
	f.register(fs, true)
	tf.register(fs)
	fs.IntVar(&o.port, "port", 80, "the TCP port to serve HTTP on, 1..65535")
	fs.StringVar(&o.dir, "dir", "", "serve the files under this directory at / (http.FileServer) instead of the built-in page")
	fs.IntVar(&o.udpEcho, "udp-echo", 0, "also answer UDP datagrams on this port with their own contents (0: off; with --dev sim the built-in client sends datagrams of several sizes and checks the echoes)")
	fs.Int64Var(&o.fetchSize, "fetch-size", 1<<20, fmt.Sprintf("with --dev sim: the bytes the built-in client gets from /bytes/N and posts to /sha256 and /echo, 0..%d", maxFetchSize))
	o.watch.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q: serve takes flags only", fs.Arg(0))
	}
	if o.port < 1 || o.port > 65535 {
		return usagef("--port %d: want a TCP port 1..65535", o.port)
	}
	if o.fetchSize < 0 || o.fetchSize > maxFetchSize {
		return usagef("--fetch-size %d: want a byte count 0..%d", o.fetchSize, maxFetchSize)
	}
	if o.watch.duration < 0 {
		return usagef("--duration %v: want a positive duration (0: until interrupted)", o.watch.duration)
	}
	if o.dir != "" {
		if st, err := os.Stat(o.dir); err != nil || !st.IsDir() {
			return fmt.Errorf("--dir %s: not a directory: name a directory to serve files from", o.dir)
		}
	}
	f.tcp = true
	if f.tap == "" && f.dev == "" {
		return usagef("say where to serve: --dev sim (simulated, with a built-in client; no root), --tap NAME --ip ADDR/LEN, or --dev PCI-ADDRESS --ip ADDR/LEN")
	}
	if f.dev == "sim" && o.watch.json {
		return usagef("--json: serve --dev sim prints its client's results as text; --json is for --stats with --tap or a PCI device")
	}
	if err := portFlag("udp-echo", o.udpEcho); err != nil {
		return err
	}
	if f.dev == "sim" {
		if f.tap != "" {
			return usagef("name exactly one of --tap NAME or --dev DEVICE")
		}
		if err := tf.check(serveSimTraceEvents(o)); err != nil {
			return err
		}
		defer tf.discard()
		f.rec = tf.recorder()
		return serveSim(&f, o, &tf, out)
	}
	if strings.HasPrefix(f.dev, "sim") {
		return usagef("--dev %s: serve simulates with --dev sim (two simulated 82599s back to back and a built-in client); for a simulated NIC that the kernel reaches, use --tap NAME", f.dev)
	}
	if err := tf.check(0); err != nil {
		return err
	}
	defer tf.discard()
	f.rec = tf.recorder()
	r, err := startStack(&f)
	if err != nil {
		return err
	}
	info := out
	if o.watch.json {
		info = os.Stderr
	}
	err = serveOn(r, &f, o, out)
	return closeAndWriteTrace(err, &tf, f.rec, info, r)
}

// serveSimTraceEvents is the least a trace of serve --dev sim takes (see
// stackTraceEventsPerKB): the payload its client moves is fetch-size bytes
// fetched, posted twice and echoed, and the files of --dir.
func serveSimTraceEvents(o serveOptions) int {
	moved := 4 * o.fetchSize
	if o.dir != "" {
		entries, _ := os.ReadDir(o.dir)
		files := 0
		for _, e := range entries {
			if info, err := e.Info(); err == nil && e.Type().IsRegular() && files < 5 {
				files++
				moved += info.Size()
			}
		}
	}
	return stackTraceEventsFixed + int(moved/1024)*stackTraceEventsPerKB
}

// serveOn serves on r until the watch ends.
func serveOn(r *runningStack, f *stackFlags, o serveOptions, out io.Writer) error {
	srv, err := startHTTP(r.tcp, o.port, o.dir)
	if err != nil {
		return fmt.Errorf("--port %d: %w", o.port, err)
	}
	defer srv.Close()
	if o.udpEcho != 0 {
		stop, err := startUDPEcho(r.st, o.udpEcho)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(out, "UDP echo on port %d\n", o.udpEcho)
	}
	where := "device " + f.dev
	if f.tap != "" {
		where = fmt.Sprintf("a simulated 82599 %s on TAP %s", r.st.NIC(1).MAC(), f.tap)
	}
	fmt.Fprintf(out, "verinic HTTP server at http://%s/ on %s%s\n", netip.AddrPortFrom(r.prefix.Addr(), uint16(o.port)), where, servingWhat(o.dir))
	if f.tap != "" && f.hostIP == "" {
		fmt.Fprintf(out, "configure the kernel's end, e.g.: ip addr add <addr>/<len> dev %s && ip link set %s up\n", f.tap, f.tap)
	}
	return r.watch(o.watch, out)
}

func servingWhat(dir string) string {
	if dir == "" {
		return ""
	}
	return ", files from " + dir
}

// serveSim is serve --dev sim: the server's stack on one simulated 82599, a
// client's on another wired to it, and the client fetches from the server.
func serveSim(f *stackFlags, o serveOptions, tf *traceFlags, out io.Writer) (err error) {
	if f.ip == "" {
		f.ip = "10.9.0.2/24"
	}
	spec, err := f.spec(false)
	if err != nil {
		return err
	}
	clientAddr := spec.prefix.Addr().Next()
	if !spec.prefix.Contains(clientAddr.Next()) { // the last address is the broadcast
		clientAddr = spec.prefix.Addr().Prev()
	}
	if !spec.prefix.Contains(clientAddr) || clientAddr == spec.prefix.Masked().Addr() {
		return usagef("--ip %s: the prefix leaves no address for the built-in client: give a prefix of /30 or shorter", f.ip)
	}
	spec.devID = 0
	domain := ixgbesim.NewDomain()
	server, client := &runningStack{}, &runningStack{}
	// The client goes before the server; then the trace of both (server
	// device 0, client 1) is written.
	defer func() { err = closeAndWriteTrace(err, tf, f.rec, out, server, client) }()
	simS, err := newFreeSim("sim-server", domain, f.rec, 0)
	if err != nil {
		return err
	}
	server.closers = append(server.closers, simDevice{simS}.Close)
	simC, err := newFreeSim("sim-client", domain, f.rec, 1)
	if err != nil {
		return err
	}
	client.closers = append(client.closers, simDevice{simC}.Close)
	ixgbesim.Connect(simS, simC, nil, nil)
	simS.Start()
	simC.Start()
	if err := server.startOn(simS, spec); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := client.startOn(simC, stackSpec{name: "sim-client", prefix: netip.PrefixFrom(clientAddr, spec.prefix.Bits()), tcp: true, rec: f.rec, devID: 1}); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	srv, err := startHTTP(server.tcp, o.port, o.dir)
	if err != nil {
		return fmt.Errorf("--port %d: %w", o.port, err)
	}
	defer srv.Close()
	if o.udpEcho != 0 {
		stop, err := startUDPEcho(server.st, o.udpEcho)
		if err != nil {
			return err
		}
		defer stop()
	}
	base := fmt.Sprintf("http://%s", netip.AddrPortFrom(spec.prefix.Addr(), uint16(o.port)))
	fmt.Fprintf(out, "verinic HTTP server at %s/ on simulated 82599 %s%s\n", base, server.st.NIC(1).MAC(), servingWhat(o.dir))
	fmt.Fprintf(out, "client at %s on simulated 82599 %s, wired back to back\n", clientAddr, client.st.NIC(1).MAC())

	timeout := o.watch.duration
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tr := &http.Transport{DialContext: (&gonet.Dialer{Protocol: client.tcp}).DialContext}
	defer tr.CloseIdleConnections()
	c := &fetcher{ctx: ctx, client: &http.Client{Transport: tr}, base: base, out: out}
	c.run(o)
	if o.udpEcho != 0 {
		c.udpEcho(client, netip.AddrPortFrom(spec.prefix.Addr(), uint16(o.udpEcho)))
	}
	// The table as the server reports it over HTTP, the client's
	// keep-alive connection in it.
	if table, ok := c.get("/conns"); ok {
		out.Write(table)
	}
	printCounters(out, server.counters(), "server", false)
	if c.failed > 0 {
		return fmt.Errorf("%d of %d requests did not get what they should (see above)", c.failed, c.requests)
	}
	fmt.Fprintf(out, "%d requests answered as expected\n", c.requests)
	return nil
}

// fetcher is serve --dev sim's client.
type fetcher struct {
	ctx              context.Context
	client           *http.Client
	base             string
	out              io.Writer
	requests, failed int
}

// run makes the requests: the page, generated bytes, a hash and an echo of
// a generated body, and with a directory the files at its top.
func (c *fetcher) run(o serveOptions) {
	n := o.fetchSize
	c.check("GET", "/", nil, func([]byte, string) (string, bool) { return "", true })
	want := generatedSHA256(n)
	c.check("GET", fmt.Sprintf("/bytes/%d", n), nil, func(body []byte, sum string) (string, bool) {
		if sum != want {
			return "not the generated bytes (sha256 " + want + ")", false
		}
		return "as generated", true
	})
	var post bytes.Buffer
	writeGenerated(&post, n)
	c.check("POST", "/sha256", post.Bytes(), func(body []byte, _ string) (string, bool) {
		if got := strings.TrimSpace(string(body)); got != want {
			return fmt.Sprintf("the server hashed the body to %.64q, want %s", got, want), false
		}
		return "the server's hash of the body is right", true
	})
	c.check("POST", "/echo", post.Bytes(), func(body []byte, sum string) (string, bool) {
		if sum != want {
			return "not what was sent", false
		}
		return "the body came back", true
	})
	if o.dir == "" {
		return
	}
	entries, _ := os.ReadDir(o.dir)
	files := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || files == 5 {
			continue
		}
		files++
		data, err := os.ReadFile(filepath.Join(o.dir, e.Name()))
		if err != nil {
			continue
		}
		sum := sha256.Sum256(data)
		fileSum := hex.EncodeToString(sum[:])
		c.check("GET", "/"+e.Name(), nil, func(body []byte, sum string) (string, bool) {
			if sum != fileSum {
				return "not the file (sha256 " + fileSum + ")", false
			}
			return "the file's contents", true
		})
	}
}

// do makes one request and returns the status and the body.
func (c *fetcher) do(method, path string, body []byte) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	t0 := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return resp.StatusCode, got, time.Since(t0), err
}

// check makes a request, prints what came back, and counts it failed
// unless it is 200 OK and verdict finds the body right (verdict says what
// it found, and whether that is right).
func (c *fetcher) check(method, path string, body []byte, verdict func(body []byte, sum string) (string, bool)) {
	c.requests++
	what := method + " " + path
	if body != nil {
		what += fmt.Sprintf(" (%d bytes)", len(body))
	}
	status, got, took, err := c.do(method, path, body)
	if err != nil {
		c.failed++
		fmt.Fprintf(c.out, "%s: %v\n", what, err)
		return
	}
	s := sha256.Sum256(got)
	sum := hex.EncodeToString(s[:])
	line := fmt.Sprintf("%s: %d %s, %d bytes, sha256 %s", what, status, http.StatusText(status), len(got), sum)
	v, ok := verdict(got, sum)
	bad := status != http.StatusOK || !ok
	if v != "" {
		line += ", " + v
	}
	moved := int64(len(got) + len(body))
	line += fmt.Sprintf(" (%v", took.Round(10*time.Microsecond))
	if moved >= 1<<20 && took > 0 {
		line += fmt.Sprintf(", %.1f MB/s", float64(moved)/took.Seconds()/1e6)
	}
	line += ")"
	if bad {
		c.failed++
		line += " FAILED"
	}
	fmt.Fprintln(c.out, line)
}

// get fetches path and returns the body of a 200 OK.
func (c *fetcher) get(path string) ([]byte, bool) {
	c.requests++
	status, body, _, err := c.do("GET", path, nil)
	if err != nil || status != http.StatusOK {
		c.failed++
		fmt.Fprintf(c.out, "GET %s: %d %v\n", path, status, err)
		return nil, false
	}
	return body, true
}

// udpEcho sends datagrams of several sizes (4000 bytes: more than a
// 1500-byte MTU carries, so IP fragments them, RFC 791) from client's
// stack to the server's echo port and counts a request failed for each
// that does not come back unchanged within a second, after 3 tries.
func (c *fetcher) udpEcho(client *runningStack, to netip.AddrPort) {
	s, err := client.st.ListenUDP(netip.AddrPort{})
	if err != nil {
		c.requests++
		c.failed++
		fmt.Fprintf(c.out, "UDP echo: %v\n", err)
		return
	}
	defer s.Close()
	buf := make([]byte, 65536)
	for _, size := range []int{1, 18, 512, 1472, 4000} {
		c.requests++
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i*7 + size)
		}
		got := ""
		for try := 0; try < 3 && got == ""; try++ {
			if _, err := s.WriteTo(msg, to); err != nil {
				got = err.Error()
				break
			}
			s.SetReadDeadline(time.Now().Add(time.Second))
			n, from, err := s.ReadFrom(buf)
			switch {
			case err != nil:
			case from != to || !bytes.Equal(buf[:n], msg):
				got = fmt.Sprintf("%d different bytes from %v", n, from)
			default:
				got = "ok"
			}
		}
		switch got {
		case "ok":
			fmt.Fprintf(c.out, "UDP echo %d bytes to %v: came back unchanged\n", size, to)
		case "":
			c.failed++
			fmt.Fprintf(c.out, "UDP echo %d bytes to %v: no echo after 3 tries FAILED\n", size, to)
		default:
			c.failed++
			fmt.Fprintf(c.out, "UDP echo %d bytes to %v: %s FAILED\n", size, to, got)
		}
	}
}

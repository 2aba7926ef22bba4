//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// nicctl sim --tap --trace with the Linux kernel of a private namespace as
// the peer: curl fetches over HTTP, a Go socket in the namespace has bytes
// echoed over TCP and datagrams over UDP (one fragmented); the trace of the
// stack's driver, the simulated device and TCP, written when --duration
// ends, passes every check of nicctl verify (the kernel's end of each TCP
// connection is not in the trace: the byte streams are checked on the
// stack's side only).
func TestLinuxSimTrace(t *testing.T) {
	ns := linuxNetns(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("skipping: curl not installed (apt-get install -y curl)")
	}
	path := filepath.Join(t.TempDir(), "sim.ndjson")
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- ns.Do(func() error {
			return runSim([]string{"--tap", "ntrace0", "--ip", "10.9.62.2/24", "--host-ip", "10.9.62.1/24",
				"--tcp-echo", "7", "--udp-echo", "9", "--http", "80", "--duration", "5s",
				"--trace", path, "--trace-events", "400000", "--trace-data", "4000000"}, &out)
		})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	curl := func(args ...string) ([]byte, error) {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name(), "curl", "-sSf", "--max-time", "5"}, args...)...).Output()
	}
	var err error
	for i := 0; i < 30; i++ { // until the TAP is up
		if _, err = curl("--max-time", "1", "http://10.9.62.2/"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("curl http://10.9.62.2/: %v\nnicctl sim said:\n%s", err, out.String())
	}
	const n = 200_000
	body, err := curl(fmt.Sprintf("http://10.9.62.2/bytes/%d", n))
	if sum := sha256.Sum256(body); err != nil || hex.EncodeToString(sum[:]) != generatedSHA256(n) {
		t.Fatalf("curl /bytes/%d: %d bytes, %v", n, len(body), err)
	}
	err = ns.Do(func() error {
		c, err := net.DialTimeout("tcp", "10.9.62.2:7", 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		msg := bytes.Repeat([]byte("verinic "), 20000)
		go func() {
			c.Write(msg)
			c.(*net.TCPConn).CloseWrite()
		}()
		back, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(back, msg) {
			return fmt.Errorf("TCP echo: %d bytes back of %d: %v", len(back), len(msg), err)
		}
		u, err := net.Dial("udp4", "10.9.62.2:9")
		if err != nil {
			return err
		}
		defer u.Close()
		buf := make([]byte, 65536)
		for _, size := range []int{1, 1472, 4000} {
			d := bytes.Repeat([]byte{byte(size)}, size)
			u.Write(d)
			u.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, err := u.Read(buf)
			if err != nil || !bytes.Equal(buf[:k], d) {
				return fmt.Errorf("UDP echo of %d bytes: %d back, %v", size, k, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("nicctl sim: %v\n%s", err, out.String())
	}
	wantLines(t, out.String(), `trace \d+ events written to .*sim\.ndjson`)
	rep := verifyChecks(t, path, stackTraceChecks...)
	if !rep.OK || rep.Devices != 1 {
		t.Errorf("verify: ok %v, %d devices, want ok and 1", rep.OK, rep.Devices)
	}
	for _, c := range rep.Checks {
		t.Logf("%s %s: %.200s", c.Result, c.Name, c.Detail)
	}
}

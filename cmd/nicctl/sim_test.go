//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/internal/hostlink"
)

func linuxNetns(t *testing.T) *hostlink.Netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for a network namespace and a TAP device")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipping: /dev/net/tun absent: %v", err)
	}
	ns, err := hostlink.NewNetns("verinic-nicctl")
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// nicctl sim answers Linux's ping (8000-byte, fragmented) and UDP echo.
func TestLinuxNicctlSim(t *testing.T) {
	ns := linuxNetns(t)
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("skipping: ping not installed (apt-get install -y iputils-ping)")
	}
	done := make(chan error, 1)
	go func() {
		done <- ns.Do(func() error {
			return runSim([]string{"--tap", "nsim0", "--ip", "10.9.77.2/24", "--host-ip", "10.9.77.1/24", "--udp-echo", "7", "--stats", "--duration", "4s"}, os.Stdout)
		})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []byte
	var err error
	for i := 0; i < 20; i++ { // wait for the TAP to come up
		time.Sleep(100 * time.Millisecond)
		if out, err = ns.Exec(ctx, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-s", "8000", "10.9.77.2"); err == nil {
			break
		}
	}
	if err != nil || !strings.Contains(string(out), "2 received") {
		t.Fatalf("ping of nicctl sim: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("socat"); err == nil {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name(), "socat", "-t", "1", "-", "UDP4:10.9.77.2:7")
		cmd.Stdin = strings.NewReader("echo me")
		if got, err := cmd.Output(); err != nil || string(got) != "echo me" {
			t.Fatalf("udp echo: %q %v", got, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("nicctl sim: %v", err)
	}
}

// nicctl ping gets Linux's replies (and fails when nothing answers).
func TestLinuxNicctlPing(t *testing.T) {
	ns := linuxNetns(t)
	err := ns.Do(func() error {
		return runPing([]string{"-c", "3", "-i", "100ms", "-s", "3000", "--tap", "nping0", "--ip", "10.9.78.2/24", "--host-ip", "10.9.78.1/24", "10.9.78.1"})
	})
	if err != nil {
		t.Fatalf("nicctl ping: %v", err)
	}
	err = ns.Do(func() error {
		return runPing([]string{"-c", "1", "-W", "300ms", "--tap", "nping1", "--ip", "10.9.79.2/24", "--host-ip", "10.9.79.1/24", "10.9.79.9"})
	})
	if err == nil || !strings.Contains(err.Error(), "no reply") {
		t.Fatalf("ping of an absent host: %v, want no reply", err)
	}
}

// nicctl serve --udp-echo answers Linux's UDP datagrams beside its HTTP
// server (the igb guest's Linux-peer test uses it on QEMU's igb).
func TestLinuxNicctlServeUDPEcho(t *testing.T) {
	ns := linuxNetns(t)
	if _, err := exec.LookPath("socat"); err != nil {
		t.Skip("skipping: socat not installed (apt-get install -y socat)")
	}
	done := make(chan error, 1)
	go func() {
		done <- ns.Do(func() error {
			return runServe([]string{"--tap", "nserve7", "--ip", "10.9.88.2/24", "--host-ip", "10.9.88.1/24", "--port", "8080", "--udp-echo", "7", "--duration", "4s"}, os.Stdout)
		})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var got []byte
	var err error
	for i := 0; i < 30; i++ { // until the TAP is up and ARP resolved
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name(), "socat", "-t", "0.5", "-", "UDP4:10.9.88.2:7")
		cmd.Stdin = strings.NewReader("echo me")
		if got, err = cmd.Output(); err == nil && string(got) == "echo me" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if string(got) != "echo me" {
		t.Fatalf("udp echo from nicctl serve: %q %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("nicctl serve: %v", err)
	}
}

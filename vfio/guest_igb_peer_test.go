package vfio

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/internal/guest"
	"github.com/verinic/verinic/internal/hostlink"
	"github.com/verinic/verinic/internal/qemutrace"
	"github.com/verinic/verinic/vfio/pci"
)

// Linux as peer through the independent device (issue 15): the igb guest's
// second igb (0000:02:00.0) is wired to a TAP device in a private network
// namespace on the host (QEMU runs inside it), and the host's Linux there
// talks to what runs on that igb in the guest: ARP, ping, UDP echo, and HTTP
// with sha256-equal bodies. Nothing outside the namespace is addressed.
//
// Stage "linux-igb": Linux's own igb driver in the guest, with a UDP echo and
// an HTTP server on the kernel's sockets (TestInGuestLinuxPeer), proves the
// plumbing. Stage "verinic-igb": the same igb bound to vfio-pci and driven by
// the project's driver, with the project's stack on it (`nicctl serve --dev
// 0000:02:00.0 --udp-echo 7`), answers the same checks: the whole mission
// end to end on a real kernel's VFIO, against a device model nobody here
// wrote.

const (
	peerNIC     = "0000:02:00.0" // the igb on the TAP device (guest.Config.TAP)
	peerGuestIP = "10.9.86.2"
	peerHostIP  = "10.9.86.1"
	peerPrefix  = 24
	peerTAP     = "vnigb0"
	peerMAC     = "52:54:00:76:00:02" // guest.QEMUArgs gives the second igb this MAC
	peerUDPPort = 7
	peerEnv     = "VERINIC_GUEST_PEER" // set by the launcher for TestInGuestLinuxPeer
	// peerTrace names nicctl serve's trace in $VERINIC_GUEST_TRACE_DIR
	// (peerTrace.ndjson) and QEMU's trace window around it.
	peerTrace = "serve-igb"
)

// TestGuestIGBLinuxPeer boots the igb guest with its second igb on a TAP
// device in a namespace of its own and checks each stage from the host's
// Linux. Needs root (namespaces, TAP) and QEMU; runs in CI.
func TestGuestIGBLinuxPeer(t *testing.T) {
	start := time.Now()
	root, parts := guestHost(t, "the QEMU igb guest with a Linux peer runs when asked for: go test ./vfio/ -run TestGuestIGBLinuxPeer -v (root; or VERINIC_GUEST=1; always in CI)")
	if err := hostlink.CheckNetns(); err != nil {
		t.Skipf("the Linux peer lives in a private network namespace: %v", err)
	}
	for _, tool := range []string{"ping", "arping", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the Linux peer needs %s (apt-get install iputils-ping arping curl; .ci/run installs them): %v", tool, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("QEMU's TAP backend needs /dev/net/tun: %v", err)
	}
	ns, err := hostlink.NewNetns("vnigbpeer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Errorf("delete namespace: %v", err)
		}
	})
	work := t.TempDir()
	vfioTest := filepath.Join(work, "vfio.test")
	buildStatic(t, root, vfioTest, "test", "-c", "-o", vfioTest, "./vfio/")
	nicctl := filepath.Join(work, "nicctl")
	buildStatic(t, root, nicctl, "build", "-o", nicctl, "./cmd/nicctl/")
	progs := []guest.Program{{
		Name: "linux-igb", Path: vfioTest,
		Args: []string{"-test.v", "-test.run", "^TestInGuestLinuxPeer$", "-test.timeout", "240s"},
		Pre:  "export " + peerEnv + "=linux-igb",
	}, {
		Name: "verinic-igb", Path: vfioTest,
		Args: []string{"-test.v", "-test.run", "^TestInGuestLinuxPeer$", "-test.timeout", "240s"},
		Pre:  "export " + peerEnv + "=verinic-igb; echo 64 > /proc/sys/vm/nr_hugepages",
	}}
	log, err := os.Create(filepath.Join(work, "serial.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	var stages []string
	outputs := filepath.Join(work, "outputs")
	res, err := guest.Run(context.Background(), guest.Config{
		Machine:  guest.MachineIGB,
		Parts:    parts,
		Programs: progs,
		Extra:    []guest.Entry{{Path: "bin/nicctl", Mode: guest.TypeRegular | 0o755, Source: nicctl}},
		TAP:      &guest.TAPPeer{Netns: ns.Name(), Ifname: peerTAP},
		// Stage verinic-igb records the trace of nicctl serve (its
		// driver's rings and its stack's TCP) in $VERINIC_GUEST_TRACE_DIR
		// and QEMU's igb trace events around it (window serve-igb).
		Outputs:   outputs,
		QEMUTrace: qemutrace.Events,
		Wait: map[string]func() error{
			"linux-igb": func() error {
				stages = append(stages, "linux-igb")
				return checkLinuxPeer(t, ns, "Linux's igb driver in the guest")
			},
			"verinic-igb": func() error {
				stages = append(stages, "verinic-igb")
				return checkLinuxPeer(t, ns, "the project's stack (nicctl serve) on QEMU's igb through VFIO")
			},
		},
		Timeout: 5 * time.Minute,
		WorkDir: work,
		Log:     log,
	})
	checkGuestRun(t, "igb guest", res, err, progs)
	for _, e := range res.HookErrors {
		t.Errorf("from the host's Linux: %s", e)
	}
	if strings.Join(stages, ",") != "linux-igb,verinic-igb" {
		t.Errorf("stages checked from the host: %q, want linux-igb,verinic-igb", stages)
	}
	// The trace of the whole exchange with the host's Linux, recorded in
	// the guest by nicctl serve --trace: nicctl verify on the host (ring
	// protocol, ring FIFO, TCP protocol; the byte streams' other end is
	// Linux, not in the trace), and QEMU's own account of the rings held
	// against it (internal/qemutrace).
	verifyGuestTraces(t, nicctl, filepath.Join(outputs, "traces"), peerTrace+".ndjson")
	checkQEMUTruth(t, filepath.Join(outputs, "traces"), res.QEMUTraces, peerTrace)
	t.Logf("igb guest with a Linux peer: booted after %v, ran in %v; whole test %v",
		res.Boot.Round(time.Millisecond), res.Duration.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// checkLinuxPeer is the host's side of a stage: it gives the TAP device in
// the namespace its address, then checks from there, as Linux's own tools
// and sockets: ARP (arping, and the neighbour entry holding the igb's MAC),
// ping, UDP echo of several sizes, and HTTP with curl: a generated body
// whose sha256 matches the one the server sent with it, and a random body
// POSTed to /sha256 and /echo whose hash and echo match what was sent.
func checkLinuxPeer(t *testing.T, ns *hostlink.Netns, who string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := ns.IP("addr", "show", "dev", peerTAP); err != nil || !strings.Contains(string(out), peerHostIP+"/") {
		if _, err := ns.IP("addr", "add", fmt.Sprintf("%s/%d", peerHostIP, peerPrefix), "dev", peerTAP); err != nil {
			return err
		}
	}
	if _, err := ns.IP("link", "set", peerTAP, "up"); err != nil {
		return err
	}
	// ARP: the guest's answer, and the neighbour entry it leaves.
	var out []byte
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err = ns.Exec(ctx, "arping", "-c", "2", "-w", "3", "-I", peerTAP, peerGuestIP)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%s: ARP: %w\n%s", who, err, out)
	}
	if !strings.Contains(strings.ToLower(string(out)), peerMAC) {
		return fmt.Errorf("%s: arping got no answer from %s:\n%s", who, peerMAC, out)
	}
	if out, err := ns.Exec(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "2", peerGuestIP); err != nil {
		return fmt.Errorf("%s: ping: %w\n%s", who, err, out)
	}
	if out, err := ns.IP("neigh", "show", peerGuestIP, "dev", peerTAP); err != nil || !strings.Contains(strings.ToLower(string(out)), peerMAC) {
		return fmt.Errorf("%s: the host's neighbour entry for %s is %q (%v), want %s", who, peerGuestIP, out, err, peerMAC)
	}
	if err := ns.Do(func() error { return udpEchoCheck(peerGuestIP, peerUDPPort) }); err != nil {
		return fmt.Errorf("%s: UDP echo: %w", who, err)
	}
	if err := httpCheck(ctx, ns); err != nil {
		return fmt.Errorf("%s: HTTP: %w", who, err)
	}
	t.Logf("%s answered the host's Linux: ARP from %s, ping, UDP echo, HTTP with sha256-equal bodies", who, peerMAC)
	return nil
}

// udpEchoCheck sends datagrams of several sizes (one more than a 1500-byte
// MTU carries, so IP fragments) and wants each back unchanged. Called inside
// the namespace (ns.Do).
func udpEchoCheck(ip string, port int) error {
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 65536)
	for _, size := range []int{1, 18, 512, 1472, 4000} {
		msg := make([]byte, size)
		rand.Read(msg)
		got := false
		for try := 0; try < 3 && !got; try++ {
			if _, err := c.Write(msg); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				continue
			}
			if !bytes.Equal(buf[:n], msg) {
				return fmt.Errorf("%d-byte datagram came back as %d different bytes", size, n)
			}
			got = true
		}
		if !got {
			return fmt.Errorf("no echo of a %d-byte datagram after 3 tries", size)
		}
	}
	return nil
}

// httpCheck runs curl in the namespace against the guest's server.
func httpCheck(ctx context.Context, ns *hostlink.Netns) error {
	dir, err := os.MkdirTemp("", "vnigbpeer")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	base := "http://" + peerGuestIP
	curl := func(args ...string) ([]byte, error) {
		return ns.Exec(ctx, "curl", append([]string{"-sS", "--fail", "--max-time", "60"}, args...)...)
	}
	// A generated body and the server's hash of it.
	const n = 1 << 20
	body, hdrs := filepath.Join(dir, "body"), filepath.Join(dir, "headers")
	if out, err := curl("-D", hdrs, "-o", body, fmt.Sprintf("%s/bytes/%d", base, n)); err != nil {
		return fmt.Errorf("GET /bytes/%d: %w\n%s", n, err, out)
	}
	got, err := os.ReadFile(body)
	if err != nil {
		return err
	}
	h, _ := os.ReadFile(hdrs)
	want := ""
	for _, l := range strings.Split(string(h), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "X-Sha256") {
			want = strings.TrimSpace(v)
		}
	}
	if sum := sha256.Sum256(got); len(got) != n || hex.EncodeToString(sum[:]) != want {
		return fmt.Errorf("GET /bytes/%d: %d bytes with sha256 %x; the server sent sha256 %q", n, len(got), sum, want)
	}
	// A random body: its hash, and the body echoed back.
	post := make([]byte, 300_000)
	rand.Read(post)
	sent := filepath.Join(dir, "post")
	if err := os.WriteFile(sent, post, 0o644); err != nil {
		return err
	}
	sum := sha256.Sum256(post)
	if out, err := curl("--data-binary", "@"+sent, base+"/sha256"); err != nil || strings.TrimSpace(string(out)) != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("POST /sha256: %q, %v; want %x", out, err, sum)
	}
	echoed := filepath.Join(dir, "echoed")
	if out, err := curl("--data-binary", "@"+sent, "-o", echoed, base+"/echo"); err != nil {
		return fmt.Errorf("POST /echo: %w\n%s", err, out)
	}
	if back, err := os.ReadFile(echoed); err != nil || sha256.Sum256(back) != sum {
		return fmt.Errorf("POST /echo: %d bytes back (%v), not the %d sent", len(back), err, len(post))
	}
	return nil
}

// TestInGuestLinuxPeer runs inside the igb guest for TestGuestIGBLinuxPeer's
// stage "linux-igb": Linux's igb driver takes the address on the TAP-wired
// igb, the kernel's sockets serve UDP echo and HTTP, and the host checks
// them while the guest waits.
func TestInGuestLinuxPeer(t *testing.T) {
	switch os.Getenv(peerEnv) {
	case "linux-igb":
		linuxIGBPeer(t)
	case "verinic-igb":
		verinicIGBPeer(t)
	default:
		t.Skip("runs only inside the igb guest of TestGuestIGBLinuxPeer")
	}
}

// verinicIGBPeer binds the TAP-wired igb to vfio-pci and runs `nicctl serve`
// on it (the project's driver and stack) until the host has checked it,
// then stops it with SIGINT and gives the NIC back to Linux's igb. serve
// records its trace (--trace, written when it stops) where the launcher
// brings it out, inside a QEMU trace window of the same name.
func verinicIGBPeer(t *testing.T) {
	if _, err := pci.System.Bind(peerNIC, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pci.System.Unbind(peerNIC); err != nil {
			t.Errorf("give %s back to igb: %v", peerNIC, err)
		}
	})
	args := []string{"serve", "--dev", peerNIC, "--ip", fmt.Sprintf("%s/%d", peerGuestIP, peerPrefix),
		"--port", "80", "--udp-echo", strconv.Itoa(peerUDPPort)}
	if dir := os.Getenv(guest.TraceDirEnv); dir != "" {
		// About 2 MB of TCP payload each way and back: some 50,000
		// events; the bytes kept for the stream check.
		args = append(args, "--trace", filepath.Join(dir, peerTrace+".ndjson"), "--trace-events", "600000", "--trace-data", "8000000")
	}
	if err := guest.QEMUTraceOn(peerTrace); err != nil && !errors.Is(err, guest.ErrNoQEMUTrace) {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/nicctl", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var said []string
	ready := false
	for deadline := time.After(90 * time.Second); !ready; {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("nicctl serve ended before serving:\n%s\n%s", strings.Join(said, "\n"), stderr.String())
			}
			said = append(said, l)
			ready = strings.Contains(l, "verinic HTTP server at")
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("nicctl serve did not say it serves within 90 s:\n%s\n%s", strings.Join(said, "\n"), stderr.String())
		}
	}
	t.Logf("nicctl serve: %s", strings.Join(said, "; "))
	werr := guest.WaitForHost("verinic-igb", 3*time.Minute)
	cmd.Process.Signal(os.Interrupt)
	tail := make(chan []string, 1)
	go func() {
		var got []string
		for l := range lines { // what it says on the way out: totals, the trace
			got = append(got, l)
		}
		tail <- got
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("nicctl serve: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Errorf("nicctl serve did not stop within 20 s of SIGINT")
	}
	if err := guest.QEMUTraceOff(peerTrace); err != nil && !errors.Is(err, guest.ErrNoQEMUTrace) {
		t.Error(err)
	}
	select {
	case got := <-tail:
		t.Logf("nicctl serve on the way out: %s", strings.Join(got, "; "))
	case <-time.After(5 * time.Second):
	}
	if werr != nil {
		t.Fatal(werr)
	}
}

// linuxIGBPeer is stage linux-igb: Linux's igb driver and the kernel's
// sockets. The address and the link go again at the end, so that the next
// stage may bind the NIC.
func linuxIGBPeer(t *testing.T) {
	ifs, err := os.ReadDir("/sys/bus/pci/devices/" + peerNIC + "/net")
	if err != nil || len(ifs) != 1 {
		t.Fatalf("%s has no network interface (is Linux's igb driving it?): %v", peerNIC, err)
	}
	ifname := ifs[0].Name()
	if err := runIP("addr", "add", fmt.Sprintf("%s/%d", peerGuestIP, peerPrefix), "dev", ifname); err != nil {
		t.Fatal(err)
	}
	linkUpForTest(t, ifname)
	if err := waitCarrier(ifname, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%s, Linux's igb) up at %s/%d", ifname, peerNIC, peerGuestIP, peerPrefix)

	uc, err := net.ListenPacket("udp4", ":"+strconv.Itoa(peerUDPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := uc.ReadFrom(buf)
			if err != nil {
				return
			}
			uc.WriteTo(buf[:n], from)
		}
	}()
	ln, err := net.Listen("tcp4", ":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: peerHTTPHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	if err := guest.WaitForHost("linux-igb", 3*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// peerHTTPHandler serves what checkLinuxPeer asks for, on the kernel's
// sockets: GET /bytes/N (random bytes with their sha256 in X-Sha256), POST
// /sha256 and POST /echo, as nicctl serve does on the project's stack.
func peerHTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 || n > 64<<20 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		b := make([]byte, n)
		rand.Read(b)
		sum := sha256.Sum256(b)
		w.Header().Set("X-Sha256", hex.EncodeToString(sum[:]))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(b)
	})
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%x\n", h.Sum(nil))
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(b)
	})
	return mux
}

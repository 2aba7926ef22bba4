package gonet

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/verinic/verinic/proto/tcp"
)

// net/http serves unchanged on the stack's listener, and http.Client dials
// through the stack: GET and POST from 1 KB to 8 MB over keep-alive
// connections, bodies checked by SHA-256.
func TestHTTPOverStack(t *testing.T) {
	e := verinicTCPEnvProtocols(t)
	ln, err := ListenTCP(e.b, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		body := payload(n)
		sum := sha256.Sum256(body)
		w.Header().Set("X-Sha256", hex.EncodeToString(sum[:]))
		w.Write(body)
	})
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		io.Copy(h, r.Body)
		io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	d := &Dialer{Protocol: e.a}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2}, Timeout: 30 * time.Second}
	for _, n := range []int{1 << 10, 64 << 10, 1 << 20, 8 << 20} {
		resp, err := client.Get(fmt.Sprintf("http://10.0.0.2/bytes/%d", n))
		if err != nil {
			t.Fatalf("GET %d: %v", n, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(body)
		if err != nil || len(body) != n || hex.EncodeToString(sum[:]) != resp.Header.Get("X-Sha256") {
			t.Fatalf("GET %d: %d bytes, %v, sha256 %x vs %s", n, len(body), err, sum, resp.Header.Get("X-Sha256"))
		}
		post := payload(n + 7)
		want := sha256.Sum256(post)
		resp, err = client.Post("http://10.0.0.2/sha256", "application/octet-stream", bytes.NewReader(post))
		if err != nil {
			t.Fatalf("POST %d: %v", n, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != hex.EncodeToString(want[:]) {
			t.Fatalf("POST %d: server hashed %s, want %x", n+7, got, want)
		}
	}
	if opens := e.a.Counters().Get(tcp.ActiveOpens); opens > 2 {
		t.Errorf("%d connections opened for 8 sequential requests: keep-alive not used", opens)
	}
}

func payload(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

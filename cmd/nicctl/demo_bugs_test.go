//go:build ixgbebugs

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/verinic/verinic/ixgbe"
)

// With the driver posting a buffer twice (ixgbe's bug switch), A frees that
// buffer twice and its pool refuses the second free (TxFreeErrors): the
// demo's accounting must fail, on that line, and end in bounded time.
func TestDemoFailsOnTxFreeErrors(t *testing.T) {
	o := demoOpts(5000)
	o.queues = 1
	o.stallAfter = 2 * time.Second
	o.driverConfig = func(i int, cfg ixgbe.Config) ixgbe.Config {
		if i == 0 {
			return ixgbe.WithBugs(cfg, ixgbe.BugDoublePost)
		}
		return cfg
	}
	var out bytes.Buffer
	done := make(chan struct{})
	var res demoResult
	var err error
	go func() {
		defer close(done)
		res, err = demo(o, &out)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the demo hangs with the driver double-posting")
	}
	if err != nil {
		t.Logf("demo ended with an error: %v", err)
		if !strings.Contains(err.Error(), "stalled") {
			t.Fatalf("unexpected error: %v\n%s", err, out.String())
		}
		return
	}
	if res.agree {
		t.Fatalf("the counts agree with the driver double-posting:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "FAIL no TX free errors") {
		t.Fatalf("no failed TX-free-errors check:\n%s", out.String())
	}
	t.Logf("%s", out.String())
}

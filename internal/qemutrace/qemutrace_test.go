package qemutrace

import (
	"fmt"
	"strings"
	"testing"

	"github.com/verinic/verinic/trace"
)

// A run in miniature, as QEMU's igb logs it: device 0 sends two frames on TX
// queue 0 (the first with a context descriptor before it), device 1
// receives them on RX queue 0 whose ring sits at 0x10000.
const qemuLog = `e1000e_core_write Write to register 0xc018, 4 byte(s), value: 0x0
e1000e_core_write Write to register 0xe018, 4 byte(s), value: 0x0
e1000e_core_write Write to register 0xc018, 4 byte(s), value: 0x3
12345@1700000000.000001:e1000e_core_write Write to register 0xe018, 4 byte(s), value: 0x3
e1000e_tx_descr 0x2a000e : 20200000 0
e1000e_tx_descr 0x200000 : 2b30003c f0000
e1000e_rx_descr Next RX descriptor: ring #0, PA: 0x10000, length: 16
igb_rx_desc_buff_write buffer 1, addr: 0x400080, offset: 0, from: 0x562cff006dc8, length: 14
igb_rx_desc_buff_write buffer 1, addr: 0x400080, offset: 14, from: 0x7feabfb2b064, length: 46
e1000e_rx_written_to_guest Received packet written to guest (queue 0)
e1000e_tx_descr 0x201000 : 2b3005ea 16a8000
e1000e_rx_descr Next RX descriptor: ring #0, PA: 0x10010, length: 16
igb_rx_desc_buff_write buffer 1, addr: 0x401080, offset: 0, from: 0x562cff006dc8, length: 1514
e1000e_rx_written_to_guest Received packet written to guest (queue 0)
igb_irq_write_eics Update EICS: 0x1 MSI-X: 1
e1000e_core_write Write to register 0x1520, 4 byte(s), value: 0x1
`

func driverTrace() (trace.Header, []trace.Event) {
	h := trace.Header{Devices: []trace.DeviceInfo{
		{Dev: 0, Name: "0000:01:00.0", Queues: []trace.QueueInfo{{Dir: "tx", Queue: 0, Ring: 8}}},
		{Dev: 1, Name: "0000:02:00.0", Queues: []trace.QueueInfo{{Dir: "rx", Queue: 0, Ring: 8}}},
	}}
	ev := []trace.Event{
		{Kind: trace.DrvPost, Dev: 1, Dir: trace.RX, Queue: 0, Index: 0, Buf: 0x400080},
		{Kind: trace.DrvPost, Dev: 1, Dir: trace.RX, Queue: 0, Index: 1, Buf: 0x401080},
		{Kind: trace.DrvPost, Dev: 1, Dir: trace.RX, Queue: 0, Index: 2, Buf: 0x402080},
		{Kind: trace.DrvTail, Dev: 1, Dir: trace.RX, Queue: 0, Index: 3},
		{Kind: trace.DrvPost, Dev: 0, Dir: trace.TX, Queue: 0, Index: 0, Buf: 0x2a000e, Aux: trace.PostContext},
		{Kind: trace.DrvPost, Dev: 0, Dir: trace.TX, Queue: 0, Index: 1, Buf: 0x200000, Len: 60},
		{Kind: trace.DrvPost, Dev: 0, Dir: trace.TX, Queue: 0, Index: 2, Buf: 0x201000, Len: 1514},
		{Kind: trace.DrvTail, Dev: 0, Dir: trace.TX, Queue: 0, Index: 3},
		{Kind: trace.DrvDDSeen, Dev: 1, Dir: trace.RX, Queue: 0, Index: 0, Len: 60},
		{Kind: trace.DrvReclaim, Dev: 1, Dir: trace.RX, Queue: 0, Index: 0, Buf: 0x400080},
		{Kind: trace.DrvDDSeen, Dev: 1, Dir: trace.RX, Queue: 0, Index: 1, Len: 1514},
		{Kind: trace.DrvReclaim, Dev: 0, Dir: trace.TX, Queue: 0, Index: 1, Buf: 0x200000},
		{Kind: trace.DrvReclaim, Dev: 0, Dir: trace.TX, Queue: 0, Index: 2, Buf: 0x201000},
	}
	for i := range ev {
		ev[i].Seq = uint64(i)
	}
	return h, ev
}

func check(t *testing.T, log string, mutate func([]trace.Event)) *Report {
	t.Helper()
	q, skipped, err := Parse(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Count(log, "igb_irq_write_eics"); skipped != want {
		t.Errorf("skipped %d lines, want %d (igb_irq_write_eics)", skipped, want)
	}
	h, ev := driverTrace()
	if mutate != nil {
		mutate(ev)
	}
	return Check(h, ev, q)
}

func TestCheckHolds(t *testing.T) {
	rep := check(t, qemuLog, nil)
	if !rep.OK() || rep.TxFetches != 3 || rep.RxFetches != 2 || rep.TailWrites != 2 || rep.SetupTailWrites != 2 {
		t.Fatalf("%v", rep)
	}
	// QEMU's account in the schema, attributed to the driver's rings.
	var got []string
	for _, e := range rep.Device {
		got = append(got, fmt.Sprintf("%s/%d/%s/%d/%d/%#x/%d", e.Kind, e.Dev, trace.DirString(e.Dir), e.Queue, e.Index, e.Buf, e.Len))
	}
	want := []string{
		"dev_tail_write/1/rx/0/3/0x0/0", "dev_tail_write/0/tx/0/3/0x0/0",
		"dev_fetch/0/tx/0/0/0x2a000e/0", "dev_fetch/0/tx/0/1/0x200000/60",
		"dev_fetch/1/rx/0/0/0x400080/0", "dev_dma/1/rx/0/0/0x400080/60",
		"dev_fetch/0/tx/0/2/0x201000/1514",
		"dev_fetch/1/rx/0/1/0x401080/0", "dev_dma/1/rx/0/1/0x401080/1514",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("device events\n got %q\nwant %q", got, want)
	}
	t.Log(rep)
}

// Each way the device's account and the driver's can disagree is caught by
// its check.
func TestCheckCatches(t *testing.T) {
	for _, c := range []struct {
		name   string
		log    func(string) string
		mutate func([]trace.Event)
		check  string
	}{
		{"a TX buffer QEMU read that nobody posted", func(s string) string { return strings.Replace(s, "0x200000 :", "0x200040 :", 1) }, nil, TxFetchMatchesPost},
		{"DTALEN differs from the post", func(s string) string { return strings.Replace(s, "2b30003c", "2b30003d", 1) }, nil, TxFetchMatchesPost},
		{"RS missing", func(s string) string { return strings.Replace(s, "2b30003c", "2330003c", 1) }, nil, TxFetchMatchesPost},
		{"a context descriptor read as data", func(s string) string { return strings.Replace(s, "20200000", "20300000", 1) }, nil, TxFetchMatchesPost},
		{"a legacy TX descriptor", func(s string) string { return strings.Replace(s, "2b3005ea", "0b3005ea", 1) }, nil, TxFetchMatchesPost},
		{"an RX frame in a buffer out of order", func(s string) string { return strings.ReplaceAll(s, "addr: 0x401080", "addr: 0x402080") }, nil, RxFetchMatchesPost},
		{"an RX descriptor at the wrong address", func(s string) string { return strings.Replace(s, "PA: 0x10010", "PA: 0x10020", 1) }, nil, RxFetchMatchesPost},
		{"an RX length the driver did not read", nil, func(ev []trace.Event) { ev[10].Len = 1510 }, RxLengthMatchesDriver},
		{"a TX completion never fetched", func(s string) string {
			return strings.Replace(s, "e1000e_tx_descr 0x201000 : 2b3005ea 16a8000\n", "", 1)
		}, nil, CompletionsFetched},
		{"an RX DD never fetched", func(s string) string {
			i := strings.Index(s, "e1000e_rx_descr Next RX descriptor: ring #0, PA: 0x10010")
			return s[:i]
		}, nil, CompletionsFetched},
		{"a tail write the driver did not record", func(s string) string {
			return strings.Replace(s, "0xe018, 4 byte(s), value: 0x3", "0xe018, 4 byte(s), value: 0x4", 1)
		}, nil, TailWritesMatch},
		{"a write of 0 to a tail after traffic", func(s string) string {
			return s + "e1000e_core_write Write to register 0xe018, 4 byte(s), value: 0x0\n"
		}, nil, TailWritesMatch},
		{"a tail write through the 82575 alias counts", func(s string) string { return strings.Replace(s, "0xc018,", "0x2818,", 1) }, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := qemuLog
			if c.log != nil {
				log = c.log(log)
			}
			rep := check(t, log, c.mutate)
			if c.check == "" {
				if !rep.OK() {
					t.Errorf("failed: %v", rep)
				}
				return
			}
			if rep.ByCheck[c.check] == 0 {
				t.Errorf("not caught by %s: %v", c.check, rep)
			}
		})
	}
}

func TestParseRejectsChangedMessages(t *testing.T) {
	for _, l := range []string{
		"e1000e_tx_descr 0x200000 2b30003c f0000",
		"e1000e_rx_descr Next descriptor: ring #0, PA: 0x10010, length: 16",
		"e1000e_core_write Write to reg 0xe018, 4 byte(s), value: 0x3",
	} {
		if _, _, err := Parse(strings.NewReader(l + "\n")); err == nil {
			t.Errorf("%q parsed", l)
		}
	}
	evs, _, err := Parse(strings.NewReader("e1000e_tx_descr (nil) : 0 0\n"))
	if err != nil || len(evs) != 1 || evs[0].Buf != 0 {
		t.Errorf("(nil) pointer: %+v %v", evs, err)
	}
}

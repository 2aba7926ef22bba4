package igb

import (
	"errors"
	"strings"
	"testing"

	"github.com/verinic/verinic/dma"
)

func TestLookupDevice(t *testing.T) {
	if s := LookupDevice(0x8086, 0x10C9); !s.Supported || s.Media != MediaCopper || s.Why != "" {
		t.Errorf("8086:10c9 (QEMU's igb): %+v", s)
	}
	for _, id := range []uint16{0x10E6, 0x10E7, 0x150D, 0x1518, 0x10CA} {
		if s := LookupDevice(0x8086, id); s.Supported || s.Why == "" || s.Media == MediaUnknown {
			t.Errorf("8086:%04x: %+v, want an 82576 that is refused with a reason", id, s)
		}
	}
	for _, c := range [][2]uint16{{0x8086, 0x10FB}, {0x15B3, 0x10C9}} {
		if s := LookupDevice(c[0], c[1]); s.Media != MediaUnknown || s.Supported || Is82576(c[0], c[1]) {
			t.Errorf("%04x:%04x: %+v, want not an 82576", c[0], c[1], s)
		}
	}
	all := Devices82576()
	if len(all) != 9 || !all[0].Supported || all[len(all)-1].Supported {
		t.Fatalf("Devices82576: %v", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Supported == all[i].Supported && all[i-1].DeviceID >= all[i].DeviceID {
			t.Errorf("Devices82576 out of order at %d: %v", i, all)
		}
	}
}

// idDevice is a Device that reports PCI IDs and has no registers: New must
// refuse an unsupported ID before touching any.
type idDevice struct{ vendor, device uint16 }

func (d idDevice) Read32(uint32) uint32 { panic("register read on a refused device") }
func (d idDevice) Write32(uint32, uint32) {
	panic("register write on a refused device")
}
func (d idDevice) DMA() *dma.Allocator { return dma.NewAllocator(nil, dma.NoHugepages) }
func (d idDevice) Name() string        { return "test0" }
func (d idDevice) IDs() (uint16, uint16, error) {
	return d.vendor, d.device, nil
}

func TestNewRefusesUnsupportedDevices(t *testing.T) {
	_, err := New(idDevice{0x8086, 0x10E6}, Config{})
	if !errors.Is(err, ErrUnsupportedDevice) || !strings.Contains(err.Error(), "PCS") {
		t.Errorf("82576 fiber: %v", err)
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Error("New(nil) succeeded")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{RxQueues: MaxQueues + 1}, "queues"},
		{Config{TxQueues: -1}, "queues"},
		{Config{RxRingSize: 100}, "power of two"},
		{Config{TxRingSize: 8192}, "power of two"},
		{Config{RxRingSize: 512, Mempool: dma.MempoolConfig{Buffers: 512}}, "more than 512"},
		{Config{Mempool: dma.MempoolConfig{Headroom: 3}}, "even"},
		{Config{Mempool: dma.MempoolConfig{BufSize: 512}}, "1024"},
	} {
		err := c.cfg.normalize()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %q", c.cfg, err, c.want)
		}
	}
	var c Config
	if err := c.normalize(); err != nil || c.RxQueues != 1 || c.TxQueues != 1 || c.RxRingSize != DefaultRingSize ||
		c.Mempool.Buffers < 2*DefaultRingSize || c.Clock == nil || c.LinkTimeout != DefaultLinkTimeout {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

func TestDecodeStatus(t *testing.T) {
	for _, c := range []struct {
		v    uint32
		want LinkStatus
	}{
		{0x80080481, LinkStatus{}},                 // QEMU's STATUS after reset: LU clear
		{0x80080483, LinkStatus{true, 1000, true}}, // after auto-negotiation
		{0x00000042, LinkStatus{true, 100, false}}, // 100 Mb/s half duplex
		{0x00000003, LinkStatus{true, 10, true}},   // 10 Mb/s full duplex
	} {
		if got := decodeStatus(c.v); got != c.want {
			t.Errorf("STATUS %#x: %+v, want %+v", c.v, got, c.want)
		}
	}
	if s := (LinkStatus{true, 1000, true}).String(); s != "up 1000 Mb/s full duplex" {
		t.Errorf("String: %q", s)
	}
}

func TestRSSQueue(t *testing.T) {
	// The redirection table holds queue entry%queues in entry i; a hash
	// selects entry hash%128.
	for _, c := range []struct {
		hash          uint32
		queues, queue int
	}{{0, 4, 0}, {5, 4, 1}, {127, 4, 3}, {128, 4, 0}, {0xFFFFFF83, 3, 0}, {0x85, 3, 2}} {
		if q := RSSQueue(c.hash, c.queues); q != c.queue {
			t.Errorf("RSSQueue(%#x, %d) = %d, want %d", c.hash, c.queues, q, c.queue)
		}
	}
}

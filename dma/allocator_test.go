package dma

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestAllocatorCarvesAndReleases(t *testing.T) {
	space := NewIOVASpace(0x40_0000_0000, 48)
	a := NewAllocator(space, NoHugepages)
	defer a.Close()
	var regions []*Region
	for range 10 {
		r, err := a.Alloc(8192, 128)
		if err != nil {
			t.Fatal(err)
		}
		if r.IOVA()%128 != 0 || r.Len() != 8192 {
			t.Fatalf("region at %#x len %d", r.IOVA(), r.Len())
		}
		// The device view and the host view are the same bytes.
		r.Bytes()[5] = 0xAB
		if host, ok := space.Translate(r.IOVA(), r.Len()); !ok || host[5] != 0xAB {
			t.Fatal("region IOVA does not translate to its memory")
		}
		regions = append(regions, r)
	}
	if a.LiveChunks() != 1 {
		t.Fatalf("ten 8 KiB regions used %d chunks, want 1 shared chunk", a.LiveChunks())
	}
	big, err := a.Alloc(3*HugepageSize, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if a.LiveChunks() != 2 || space.Mappings() != 2 {
		t.Fatalf("large region: %d chunks, %d mappings", a.LiveChunks(), space.Mappings())
	}
	if err := big.Free(); err != nil {
		t.Fatal(err)
	}
	if err := big.Free(); err == nil {
		t.Fatal("double Free of a region succeeded")
	}
	if space.Mappings() != 1 {
		t.Fatalf("freed large region still mapped: %d mappings", space.Mappings())
	}
	if _, ok := space.Translate(big.IOVA(), 1); ok {
		t.Fatal("freed region still translates: the device could reach released memory")
	}
	for _, r := range regions {
		if err := r.Free(); err != nil {
			t.Fatal(err)
		}
	}
	if a.LiveChunks() != 0 {
		t.Fatalf("after freeing everything %d chunks are live", a.LiveChunks())
	}
}

func TestAllocatorRejectsBadRequests(t *testing.T) {
	a := NewAllocator(NewIOVASpace(0, 48), NoHugepages)
	defer a.Close()
	for _, c := range []struct{ size, align int }{{0, 128}, {-1, 128}, {64, 3}, {64, 8192}} {
		if _, err := a.Alloc(c.size, c.align); err == nil {
			t.Errorf("Alloc(%d, %d) succeeded", c.size, c.align)
		}
	}
	a.Close()
	if _, err := a.Alloc(64, 64); err == nil {
		t.Error("Alloc after Close succeeded")
	}
}

type failingMapper struct{}

func (failingMapper) MapDMA([]byte) (uint64, error) { return 0, errors.New("IOMMU says no") }
func (failingMapper) UnmapDMA(uint64, uint64) error { return nil }

func TestAllocatorReportsMapFailure(t *testing.T) {
	a := NewAllocator(failingMapper{}, NoHugepages)
	_, err := a.Alloc(4096, 0)
	if err == nil || !strings.Contains(err.Error(), "IOMMU says no") {
		t.Fatalf("map failure not reported with its cause: %v", err)
	}
}

func TestIOVASpaceAddressWidth(t *testing.T) {
	s := NewIOVASpace(1<<31-HugepageSize, 31)
	mem := make([]byte, HugepageSize)
	if _, err := s.MapDMA(mem); err == nil {
		if _, err := s.MapDMA(mem); err == nil {
			t.Fatal("mapped past a 31-bit address width")
		}
	}
	if _, ok := s.Translate(0, 1); ok {
		t.Fatal("unmapped IOVA 0 translated")
	}
}

// TestHugepages exercises the real hugepage path. As root it reserves
// hugepages for the duration of the test (and restores the previous count);
// otherwise it runs only where hugepages are already reserved.
//
// Other packages' tests run in parallel with this one and their simulators
// use dma.PreferHugepages, so they take any free hugepage they see: the pages
// this test reserves may be gone before it maps them. As root it therefore
// reserves with headroom and, when the allocation still finds none free,
// reserves more and tries again (a bounded number of times).
func TestHugepages(t *testing.T) {
	const sysctl = "/proc/sys/vm/nr_hugepages"
	raw, err := os.ReadFile(sysctl)
	if err != nil {
		t.Skipf("no hugepage support in this kernel: %v", err)
	}
	before, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	root := os.Geteuid() == 0
	if !root && before == 0 {
		t.Skip("no hugepages reserved and not root: reserve some with `echo 2 > /proc/sys/vm/nr_hugepages` to run this test")
	}
	if root {
		defer os.WriteFile(sysctl, []byte(strconv.Itoa(before)), 0)
	}
	const attempts, headroom = 4, 32
	reserved := before
	// withPages runs alloc, reserving headroom more pages first (as root)
	// and again each time alloc finds no free hugepage.
	withPages := func(what string, alloc func() error) {
		t.Helper()
		for attempt := 1; ; attempt++ {
			if root {
				reserved += headroom
				if err := os.WriteFile(sysctl, []byte(strconv.Itoa(reserved)), 0); err != nil {
					t.Skipf("cannot reserve hugepages: %v", err)
				}
			}
			err := alloc()
			if err == nil {
				return
			}
			if !errors.Is(err, ErrNoHugepages) {
				t.Fatalf("%s: %v", what, err)
			}
			if !root {
				t.Skipf("hugepages reserved but none free: %v", err)
			}
			if attempt == attempts {
				t.Fatalf("%s: %v (after reserving %d hugepages in %d steps; other tests took them as fast)", what, err, reserved-before, attempts)
			}
		}
	}

	var m *HostMemory
	withPages("hugepage allocation", func() (err error) {
		m, err = AllocHost(HugepageSize+1, RequireHugepages)
		return err
	})
	defer m.Release()
	if !m.Hugepages() || len(m.Bytes()) != 2*HugepageSize || m.PageSize() != HugepageSize {
		t.Fatalf("hugepage mapping: huge=%v len=%d", m.Hugepages(), len(m.Bytes()))
	}
	m.Bytes()[len(m.Bytes())-1] = 1 // touch the last byte: both pages are really there

	// A mempool on hugepages keeps buffers within a page.
	a := NewAllocator(NewIOVASpace(0x40_0000_0000, 48), RequireHugepages)
	defer a.Close()
	var p *Mempool
	withPages("mempool on hugepages", func() (err error) {
		p, err = NewMempool(a, MempoolConfig{Buffers: 900})
		return err
	})
	if !p.region.Hugepages() {
		t.Fatal("mempool region is not on hugepages")
	}
}

func TestRequireHugepagesFailsClearly(t *testing.T) {
	raw, _ := os.ReadFile("/proc/sys/vm/nr_hugepages")
	if strings.TrimSpace(string(raw)) != "0" {
		t.Skip("hugepages are reserved on this machine; the failure path needs none")
	}
	_, err := AllocHost(4096, RequireHugepages)
	if !errors.Is(err, ErrNoHugepages) {
		t.Fatalf("RequireHugepages with none reserved: %v, want ErrNoHugepages", err)
	}
	if !strings.Contains(err.Error(), "nr_hugepages") {
		t.Fatalf("error does not say how to reserve hugepages: %v", err)
	}
}

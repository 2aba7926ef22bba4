package vfio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/vfio/hugepages"
	"github.com/verinic/verinic/vfio/pci"
)

// The tests in this file run inside the QEMU guest of TestGuest, against the
// real kernel's VFIO, an emulated Intel IOMMU and an emulated e1000e NIC
// (8086:10d3). Elsewhere they skip.

// e1000e registers (Intel 82574 GbE controller datasheet, chapter 10; QEMU's
// e1000e model follows it). The test drives the legacy transmit path only:
// enough to make the device fetch a descriptor and a frame by DMA and write
// the descriptor back.
const (
	e1000CTRL   = 0x0000
	e1000STATUS = 0x0008
	e1000ICR    = 0x00C0 // interrupt cause read (clear on read)
	e1000ICS    = 0x00C8 // interrupt cause set
	e1000IMS    = 0x00D0 // interrupt mask set
	e1000IMC    = 0x00D8 // interrupt mask clear
	e1000IVAR   = 0x00E4 // MSI-X vector allocation
	e1000TCTL   = 0x0400
	e1000RDBAL  = 0x2800
	e1000TDBAL  = 0x3800
	e1000TDBAH  = 0x3804
	e1000TDLEN  = 0x3808
	e1000TDH    = 0x3810
	e1000TDT    = 0x3818
	e1000GPTC   = 0x4080 // good packets transmitted (clear on read)
	e1000RAL0   = 0x5400

	ctrlRST        = 1 << 26
	tctlEN         = 1 << 1
	tctlPSP        = 1 << 3
	icrTXDW        = 1 << 0  // transmit descriptor written back
	icrTXQ0        = 1 << 22 // MSI-X: transmit queue 0
	ivarTXQ0Valid  = 1 << 11 // IVAR: TxQ0 vector (bits 10:8) is valid
	txCmdEOP       = 0x01
	txCmdIFCS      = 0x02
	txCmdRS        = 0x08
	txStatusDD     = 0x01
	txDescSize     = 16
	e1000BAR0Bytes = 128 << 10
)

// guestNIC returns the guest's e1000e bound to vfio-pci, or skips outside the
// guest.
func guestNIC(t *testing.T) string {
	t.Helper()
	addr := os.Getenv(guestEnv)
	if addr == "" {
		t.Skip("runs only inside the QEMU test guest (go test ./vfio/ -run TestGuest -v boots it)")
	}
	d, err := pci.System.Lookup(addr)
	if err != nil {
		t.Fatal(err)
	}
	if d.Driver != pci.VFIODriver {
		if _, err := pci.System.Bind(addr, false); err != nil {
			t.Fatalf("bind the guest NIC to vfio-pci: %v", err)
		}
	}
	return addr
}

// reserveHugepages makes sure n free 2 MiB pages exist for the test and
// restores the previous reservation afterwards.
func reserveHugepages(t *testing.T, n int) {
	t.Helper()
	pools, err := hugepages.System.Status()
	if err != nil {
		t.Fatal(err)
	}
	before := pools[0]
	if before.Free >= n {
		return
	}
	if _, err := hugepages.System.Reserve(-1, before.Total+n-before.Free); err != nil {
		t.Fatalf("reserve hugepages in the guest: %v", err)
	}
	t.Cleanup(func() {
		if _, err := hugepages.System.Reserve(-1, before.Total); err != nil {
			t.Errorf("restore the hugepage reservation: %v", err)
		}
	})
}

// sysfsCommand reads the PCI command register through sysfs, independently
// of VFIO.
func sysfsCommand(t *testing.T, addr string) uint16 {
	t.Helper()
	b, err := os.ReadFile("/sys/bus/pci/devices/" + addr + "/config")
	if err != nil || len(b) < 6 {
		t.Fatalf("read config space through sysfs: %v (%d bytes)", err, len(b))
	}
	return binary.LittleEndian.Uint16(b[4:])
}

// newGuestContainer opens a container with the given hugepage policy and
// closes it when the test ends, reporting a failed close.
func newGuestContainer(t *testing.T, hp dma.HugepagePolicy) *Container {
	t.Helper()
	c, err := NewContainer(Options{Hugepages: hp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close container: %v", err)
		}
	})
	return c
}

func openGuestDevice(t *testing.T, addr string) (*Container, *Device) {
	t.Helper()
	c := newGuestContainer(t, dma.RequireHugepages)
	d, err := c.Open(addr)
	if err != nil {
		t.Fatal(err)
	}
	return c, d
}

func TestInGuestOpenSequence(t *testing.T) {
	addr := guestNIC(t)
	if cmd := sysfsCommand(t, addr); cmd&pciCommandMaster != 0 {
		t.Logf("bus mastering already on before open (command %#x); disabling it to see our code turn it on", cmd)
		f, err := os.OpenFile("/sys/bus/pci/devices/"+addr+"/config", os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		var b [2]byte
		binary.LittleEndian.PutUint16(b[:], cmd&^pciCommandMaster)
		f.WriteAt(b[:], 4)
		f.Close()
	}
	c, err := NewContainer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	page, err := dma.AllocHost(4096, dma.NoHugepages)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Release()
	if _, err := c.MapDMA(page.Bytes()); err == nil || !strings.Contains(err.Error(), "open a device first") {
		t.Errorf("DMA mapping before any device is open: %v", err)
	}
	if _, err := c.MapDMA(make([]byte, 100)); err == nil || !strings.Contains(err.Error(), "multiples of 4 KiB") {
		t.Errorf("DMA mapping of unaligned memory: %v", err)
	}
	if !c.HasExtension(Type1IOMMU) || !c.HasExtension(Type1v2IOMMU) {
		t.Error("the container lacks the type-1 IOMMU extensions")
	}
	if c.HasExtension(NoIOMMU) {
		t.Log("note: the kernel offers no-IOMMU mode")
	}
	d, err := c.Open(addr)
	if err != nil {
		t.Fatal(err)
	}
	if c.IOMMUType() != Type1v2IOMMU {
		t.Errorf("IOMMU type %d, want type1v2", c.IOMMUType())
	}
	ranges := c.IOVARanges()
	t.Logf("IOVA ranges %#x", ranges)
	if len(ranges) == 0 || ranges[len(ranges)-1].End != 1<<39-1 {
		t.Errorf("IOVA ranges %#x: want the 39-bit address width of QEMU's intel-iommu", ranges)
	}
	if d.Flags()&DeviceFlagsPCI == 0 || d.NumRegions() < RegionConfig+1 || d.NumIRQs() < IRQIndexMSIX+1 {
		t.Errorf("device info: flags %#x, %d regions, %d IRQ indexes", d.Flags(), d.NumRegions(), d.NumIRQs())
	}
	bar, err := d.RegionInfo(RegionBAR0)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := d.RegionInfo(RegionConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BAR0 %+v, config %+v", bar, cfg)
	if bar.Size != e1000BAR0Bytes || !bar.Mappable() || bar.Offset != 0 || len(d.BAR0()) != e1000BAR0Bytes {
		t.Errorf("BAR0 region %+v, mapped %d bytes; want 128 KiB, mappable, at offset 0", bar, len(d.BAR0()))
	}
	if cfg.Offset != uint64(RegionConfig)<<40 || cfg.Size < 256 {
		t.Errorf("config region %+v: want offset 7<<40", cfg)
	}
	vendor, device, err := d.IDs()
	if err != nil || vendor != 0x8086 || device != 0x10d3 {
		t.Errorf("config space IDs %04x:%04x (%v), want 8086:10d3", vendor, device, err)
	}
	cmd, err := d.Command()
	if err != nil || cmd&pciCommandMaster == 0 {
		t.Errorf("command register %#x after open (%v): bus mastering off", cmd, err)
	}
	if sc := sysfsCommand(t, addr); sc&pciCommandMaster == 0 {
		t.Errorf("sysfs reads command %#x: bus mastering off", sc)
	}
	if err := d.DisableBusMaster(); err != nil {
		t.Fatal(err)
	}
	if sc := sysfsCommand(t, addr); sc&pciCommandMaster != 0 {
		t.Errorf("sysfs reads command %#x after DisableBusMaster", sc)
	}
	if err := d.EnableBusMaster(); err != nil {
		t.Fatal(err)
	}
	if sc := sysfsCommand(t, addr); sc&pciCommandMaster == 0 {
		t.Errorf("sysfs reads command %#x after EnableBusMaster", sc)
	}
	// Registers through the mapping and through pread agree.
	for _, reg := range []uint32{e1000STATUS, e1000RAL0, e1000CTRL} {
		var b [4]byte
		if err := d.ReadRegion(RegionBAR0, uint64(reg), b[:]); err != nil {
			t.Fatal(err)
		}
		if m, p := d.Read32(reg), binary.LittleEndian.Uint32(b[:]); m != p {
			t.Errorf("register %#x: mmap %#x, pread %#x", reg, m, p)
		}
	}
	// A write through the mapping is seen by pread, and the reverse.
	d.Write32(e1000RDBAL, 0x12345680)
	var b [4]byte
	if err := d.ReadRegion(RegionBAR0, e1000RDBAL, b[:]); err != nil || binary.LittleEndian.Uint32(b[:]) != 0x12345680 {
		t.Errorf("RDBAL written through mmap reads %#x through pread (%v)", binary.LittleEndian.Uint32(b[:]), err)
	}
	binary.LittleEndian.PutUint32(b[:], 0xabcdef00)
	if err := d.WriteRegion(RegionBAR0, e1000RDBAL, b[:]); err != nil {
		t.Fatal(err)
	}
	if got := d.Read32(e1000RDBAL); got != 0xabcdef00 {
		t.Errorf("RDBAL written through pwrite reads %#x through mmap", got)
	}
	if d.BadAccesses() != 0 {
		t.Errorf("%d bad register accesses", d.BadAccesses())
	}
	info, err := d.IRQInfo(IRQIndexMSIX)
	if err != nil || info.Count < 1 || info.Flags&IRQInfoEventfd == 0 {
		t.Errorf("MSI-X info %+v (%v)", info, err)
	}
}

// txRing sets up the e1000e's legacy transmit ring at ringIOVA with n
// descriptors (datasheet 7.2.10 / QEMU e1000e_core).
func txRing(d *Device, ringIOVA uint64, n int) {
	d.Write32(e1000TCTL, 0)
	d.Write32(e1000TDBAL, uint32(ringIOVA))
	d.Write32(e1000TDBAH, uint32(ringIOVA>>32))
	d.Write32(e1000TDLEN, uint32(n*txDescSize))
	d.Write32(e1000TDH, 0)
	d.Write32(e1000TDT, 0)
	d.Write32(e1000TCTL, tctlEN|tctlPSP)
}

// putTxDesc writes a legacy transmit descriptor: buffer address, length,
// command EOP|IFCS|RS, status 0.
func putTxDesc(desc []byte, bufIOVA uint64, length int) {
	binary.LittleEndian.PutUint64(desc[0:], bufIOVA)
	binary.LittleEndian.PutUint16(desc[8:], uint16(length))
	desc[10] = 0 // CSO
	desc[11] = txCmdEOP | txCmdIFCS | txCmdRS
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&desc[12])), 0) // status, CSS, special
}

// txStatus loads the descriptor's status byte as the device left it.
func txStatus(desc []byte) uint8 {
	return uint8(atomic.LoadUint32((*uint32)(unsafe.Pointer(&desc[12]))))
}

func waitDD(desc []byte, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if txStatus(desc)&txStatusDD != 0 {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func resetE1000e(t *testing.T, d *Device) {
	t.Helper()
	d.Write32(e1000IMC, 0xFFFFFFFF)
	d.Write32(e1000CTRL, d.Read32(e1000CTRL)|ctrlRST)
	time.Sleep(10 * time.Millisecond)
	for i := 0; d.Read32(e1000CTRL)&ctrlRST != 0; i++ {
		if i > 100 {
			t.Fatal("e1000e reset did not complete")
		}
		time.Sleep(time.Millisecond)
	}
	d.Write32(e1000IMC, 0xFFFFFFFF)
	d.Read32(e1000ICR)
	d.Read32(e1000GPTC)
}

// TestInGuestDMATransmit has the emulated NIC fetch a descriptor and a frame
// from hugepage memory of the dma package at an IOVA far above the guest's
// RAM, through the emulated IOMMU, and write the descriptor back.
func TestInGuestDMATransmit(t *testing.T) {
	addr := guestNIC(t)
	reserveHugepages(t, 4)
	c, d := openGuestDevice(t, addr)
	resetE1000e(t, d)
	alloc := d.DMA()
	ring, err := alloc.Alloc(8*txDescSize, 128)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := dma.NewMempool(alloc, dma.MempoolConfig{Name: "guest-tx", Buffers: 64})
	if err != nil {
		t.Fatal(err)
	}
	if !ring.Hugepages() {
		t.Error("the ring is not in hugepage memory")
	}
	ramTop := guestRAMTop(t)
	t.Logf("ring at IOVA %#x, pool at IOVA %#x, guest RAM ends at %#x, %d mappings", ring.IOVA(), pool.BufferIOVA(0), ramTop, c.Mappings())
	if ring.IOVA() <= ramTop || pool.BufferIOVA(0) <= ramTop {
		t.Errorf("IOVAs %#x/%#x are not above the guest's RAM (%#x): they would not prove translation", ring.IOVA(), pool.BufferIOVA(0), ramTop)
	}
	pkt, err := pool.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	frame := pkt.Room()[:60]
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5}) // broadcast, local experimental ethertype
	for i := 14; i < 60; i++ {
		frame[i] = byte(i)
	}
	descs := ring.Bytes()
	for i := range descs {
		descs[i] = 0xff // garbage that the device must not see as done
	}
	for i := 0; i < 8; i++ {
		putTxDesc(descs[i*txDescSize:], pkt.IOVA(), 60)
	}
	txRing(d, ring.IOVA(), 8)
	d.Write32(e1000TDT, 1)
	if !waitDD(descs[0:], 5*time.Second) {
		t.Fatalf("the NIC did not write back descriptor 0 (status %#x, TDH %d, TCTL %#x)", txStatus(descs), d.Read32(e1000TDH), d.Read32(e1000TCTL))
	}
	if h := d.Read32(e1000TDH); h != 1 {
		t.Errorf("TDH = %d after one descriptor, want 1", h)
	}
	if txStatus(descs[txDescSize:])&txStatusDD != 0 {
		t.Error("descriptor 1, beyond the tail, was written back")
	}
	if n := d.Read32(e1000GPTC); n != 1 {
		t.Errorf("good packets transmitted = %d, want 1: the frame was not fetched", n)
	}
	// Three more in one tail write.
	d.Write32(e1000TDT, 4)
	for i := 1; i < 4; i++ {
		if !waitDD(descs[i*txDescSize:], 5*time.Second) {
			t.Fatalf("descriptor %d not written back", i)
		}
	}
	if n := d.Read32(e1000GPTC); n != 3 {
		t.Errorf("good packets transmitted = %d, want 3", n)
	}
	d.Write32(e1000TCTL, 0)
	if err := pkt.Free(); err != nil {
		t.Error(err)
	}
	if err := pool.Release(); err != nil {
		t.Error(err)
	}
	if err := ring.Free(); err != nil {
		t.Error(err)
	}
}

// guestRAMTop returns the end of the highest System RAM range of the guest.
func guestRAMTop(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open("/proc/iomem")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var top uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasSuffix(line, ": System RAM") || strings.HasPrefix(line, " ") {
			continue
		}
		rng := strings.TrimSpace(strings.SplitN(line, ":", 2)[0])
		parts := strings.SplitN(rng, "-", 2)
		if len(parts) != 2 {
			continue
		}
		end, err := strconv.ParseUint(parts[1], 16, 64)
		if err == nil && end > top {
			top = end
		}
	}
	if top == 0 {
		t.Fatal("no System RAM in /proc/iomem (are we root?)")
	}
	return top
}

// TestInGuestDMAToUnmappedIOVABlocked points the NIC at a descriptor ring
// whose IOVA was unmapped: the IOMMU must block the fetch (the kernel logs a
// DMAR fault, which FaultWatcher reports) and the descriptor, still in host
// memory, must never be written back.
func TestInGuestDMAToUnmappedIOVABlocked(t *testing.T) {
	addr := guestNIC(t)
	reserveHugepages(t, 2)
	c, d := openGuestDevice(t, addr)
	resetE1000e(t, d)
	host, err := dma.AllocHost(dma.HugepageSize, dma.RequireHugepages)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Release()
	const iova = 0x70_0000_0000 // 448 GiB: inside the 39-bit space, far from everything
	// Beyond the IOMMU's 39-bit address width a mapping is refused.
	if err := c.MapDMAAt(host.Bytes(), 1<<39); err == nil || !strings.Contains(err.Error(), "outside the IOMMU's valid ranges") {
		t.Errorf("mapping at 2^39: %v", err)
	}
	if err := c.MapDMAAt(host.Bytes(), iova); err != nil {
		t.Fatal(err)
	}
	if err := c.MapDMAAt(host.Bytes(), iova+4096); err == nil {
		t.Error("an overlapping mapping was accepted")
	}
	mem := host.Bytes()
	ringOff, bufOff := 0, 4096
	putTxDesc(mem[ringOff:], iova+uint64(bufOff), 60)
	// First show that the mapping works: one descriptor goes through.
	txRing(d, iova, 8)
	d.Write32(e1000TDT, 1)
	if !waitDD(mem[ringOff:], 5*time.Second) {
		t.Fatalf("descriptor at mapped IOVA %#x not written back", iova)
	}
	d.Read32(e1000GPTC)
	// Now unmap it and ask again.
	if err := c.UnmapDMA(iova, uint64(len(mem))); err != nil {
		t.Fatal(err)
	}
	if err := c.UnmapDMA(iova, uint64(len(mem))); err == nil {
		t.Error("a second unmap of the same IOVA succeeded")
	}
	w, err := WatchFaults(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	putTxDesc(mem[txDescSize:], iova+uint64(bufOff), 60)
	d.Write32(e1000TDT, 2)
	var faults []IOMMUFault
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(faults) == 0 {
		time.Sleep(20 * time.Millisecond)
		f, err := w.Poll()
		if err != nil {
			t.Fatal(err)
		}
		faults = append(faults, f...)
	}
	if len(faults) == 0 {
		t.Fatal("no IOMMU fault logged for the DMA to an unmapped IOVA")
	}
	t.Logf("reported: %v", faults[0])
	if faults[0].Addr&^0xfff != iova&^0xfff || faults[0].Write {
		t.Errorf("fault %v: want a read at IOVA %#x", faults[0], uint64(iova))
	}
	time.Sleep(200 * time.Millisecond)
	if st := txStatus(mem[txDescSize:]); st&txStatusDD != 0 {
		t.Errorf("descriptor behind an unmapped IOVA was written back (status %#x): the IOMMU did not block the DMA", st)
	}
	if n := d.Read32(e1000GPTC); n != 0 {
		t.Errorf("%d packets transmitted from an unmapped ring", n)
	}
	d.Write32(e1000TCTL, 0)
}

func TestInGuestCloseReopenAndBusy(t *testing.T) {
	addr := guestNIC(t)
	reserveHugepages(t, 2)
	for round := 0; round < 2; round++ {
		d, err := Open(addr)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if _, err := Open(addr); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "already open") {
			t.Errorf("second open of the same device: %v", err)
		}
		if other, err := NewContainer(Options{}); err != nil {
			t.Error(err)
		} else {
			if _, err := other.Open(addr); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "another container of this process") {
				t.Errorf("open of the same device in a second container: %v", err)
			}
			other.Close()
		}
		r, err := d.DMA().Alloc(4096, 0)
		if err != nil {
			t.Fatal(err)
		}
		if d.Container().Mappings() != 1 {
			t.Errorf("%d mappings after one allocation", d.Container().Mappings())
		}
		if err := r.Free(); err != nil {
			t.Fatal(err)
		}
		if d.Read32(e1000STATUS) == 0xFFFFFFFF {
			t.Error("STATUS reads all ones on an open device")
		}
		if err := d.Close(); err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
		if d.Read32(e1000STATUS) != 0xFFFFFFFF {
			t.Error("a closed device does not read all ones")
		}
		if err := d.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	}
	// Another process holding the group makes the open fail with ErrBusy.
	cmd := exec.Command(os.Args[0], "-test.run=^TestInGuestHelperHoldDevice$")
	cmd.Env = append(os.Environ(), "VERINIC_HOLD_DEVICE=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "held") {
		t.Fatalf("helper did not hold the device: %q %v", line, err)
	}
	_, err = Open(addr)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "another process") {
		t.Errorf("open while another process holds the group: %v", err)
	}
	stdin.Close()
	go io.Copy(io.Discard, stdout)
	cmd.Wait()
	d, err := Open(addr)
	if err != nil {
		t.Fatalf("open after the other process let go: %v", err)
	}
	d.Close()
}

// TestInGuestHelperHoldDevice is run as a child process by
// TestInGuestCloseReopenAndBusy: it opens the device and holds it until its
// standard input closes.
func TestInGuestHelperHoldDevice(t *testing.T) {
	if os.Getenv("VERINIC_HOLD_DEVICE") == "" {
		t.Skip("helper process of TestInGuestCloseReopenAndBusy")
	}
	d, err := Open(os.Getenv(guestEnv))
	if err != nil {
		os.Stdout.WriteString("failed " + err.Error() + "\n")
		t.Fatal(err)
	}
	os.Stdout.WriteString("held\n")
	io.Copy(io.Discard, os.Stdin)
	d.Close()
}

func TestInGuestInterrupts(t *testing.T) {
	addr := guestNIC(t)
	_, d := openGuestDevice(t, addr)
	resetE1000e(t, d)

	// MSI-X first by default.
	in, err := d.EnableInterrupts(2)
	if err != nil {
		t.Fatal(err)
	}
	if in.Index() != IRQIndexMSIX || in.Count() != 2 {
		t.Errorf("default interrupts: %s with %d vectors, want MSI-X with 2", IRQIndexName(in.Index()), in.Count())
	}
	if _, err := d.EnableInterrupts(1); err == nil {
		t.Error("enabling interrupts twice succeeded")
	}
	// The e1000e raises transmit queue 0 on the vector IVAR names
	// (82574 datasheet, IVAR) when its cause is set and unmasked.
	d.Write32(e1000IVAR, ivarTXQ0Valid|1<<8) // TxQ0 -> vector 1
	d.Write32(e1000IMS, icrTXQ0)
	d.Write32(e1000ICS, icrTXQ0)
	if n, err := in.Wait(1, 3*time.Second); err != nil || n == 0 {
		t.Errorf("MSI-X vector 1: %d interrupts, %v", n, err)
	}
	if _, err := in.Wait(0, 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Errorf("MSI-X vector 0 fired without a cause: %v", err)
	}
	d.Write32(e1000IMC, 0xFFFFFFFF)
	d.Read32(e1000ICR)
	if err := in.Disable(); err != nil {
		t.Fatal(err)
	}

	// Fallback: an index the device lacks is skipped, MSI is taken.
	in, err = d.EnableInterrupts(4, 9, IRQIndexMSI)
	if err != nil {
		t.Fatal(err)
	}
	if in.Index() != IRQIndexMSI || in.Count() != 1 {
		t.Errorf("fallback interrupts: %s with %d vectors, want MSI with 1", IRQIndexName(in.Index()), in.Count())
	}
	d.Write32(e1000IMS, icrTXDW)
	d.Write32(e1000ICS, icrTXDW)
	if n, err := in.Wait(0, 3*time.Second); err != nil || n == 0 {
		t.Errorf("MSI: %d interrupts, %v", n, err)
	}
	d.Write32(e1000IMC, 0xFFFFFFFF)
	d.Read32(e1000ICR)
	if err := in.Disable(); err != nil {
		t.Fatal(err)
	}
	// INTx, which the kernel masks each time it fires: Wait unmasks it, so a
	// second interrupt arrives too.
	in, err = d.EnableInterrupts(1, IRQIndexINTx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		d.Write32(e1000IMS, icrTXDW)
		d.Write32(e1000ICS, icrTXDW)
		if n, err := in.Wait(0, 3*time.Second); err != nil || n == 0 {
			t.Errorf("INTx interrupt %d: %d, %v", i, n, err)
		}
		d.Write32(e1000IMC, 0xFFFFFFFF)
		d.Read32(e1000ICR) // deassert the line
	}
	if err := in.Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.EnableInterrupts(1, 9); err == nil || !strings.Contains(err.Error(), "no usable interrupt index") {
		t.Errorf("no usable index: %v", err)
	}
}

// TestInGuestReset resets a NIC through VFIO_DEVICE_RESET. The kernel's
// first reset method for the e1000e is a PCI power-management transition,
// which QEMU 7.2 does not turn into a device reset, so the test uses the NIC
// that sits alone behind a PCIe-to-PCI bridge, selects the secondary bus
// reset, which QEMU carries out, and checks that the device really was reset.
func TestInGuestReset(t *testing.T) {
	guestNIC(t)
	nics := strings.Fields(os.Getenv(guestNICsEnv))
	if len(nics) != 4 {
		t.Fatalf("the guest has NICs %v, want four", nics)
	}
	addr := nics[3]
	if _, err := pci.System.Bind(addr, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pci.System.Unbind(addr) })
	methodFile := "/sys/bus/pci/devices/" + addr + "/reset_method"
	if err := os.WriteFile(methodFile, []byte("bus"), 0); err != nil {
		t.Fatalf("select the bus reset: %v", err)
	}
	t.Cleanup(func() { os.WriteFile(methodFile, []byte("default"), 0) })
	_, d := openGuestDevice(t, addr)
	if d.Flags()&DeviceFlagsReset == 0 {
		t.Fatal("the kernel offers no reset for the e1000e")
	}
	d.Write32(e1000TDBAL, 0x1000)
	if got := d.Read32(e1000TDBAL); got != 0x1000 {
		t.Fatalf("TDBAL = %#x before reset", got)
	}
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	if got := d.Read32(e1000TDBAL); got != 0 {
		t.Errorf("TDBAL = %#x after reset, want 0", got)
	}
	if cmd, err := d.Command(); err != nil || cmd&pciCommandMaster == 0 {
		t.Errorf("bus mastering off after reset: %#x %v", cmd, err)
	}
}

// groupNICs returns the two e1000es that share one IOMMU group (behind the
// guest's PCIe-to-PCI bridge).
func groupNICs(t *testing.T) (string, string) {
	t.Helper()
	guestNIC(t)
	nics := strings.Fields(os.Getenv(guestNICsEnv))
	if len(nics) != 4 {
		t.Fatalf("the guest has NICs %v, want four", nics)
	}
	a, err := pci.System.Lookup(nics[1])
	if err != nil {
		t.Fatal(err)
	}
	b, err := pci.System.Lookup(nics[2])
	if err != nil {
		t.Fatal(err)
	}
	if a.IOMMUGroup < 0 || a.IOMMUGroup != b.IOMMUGroup {
		t.Fatalf("%s and %s are in IOMMU groups %d and %d, want one", a.Address, b.Address, a.IOMMUGroup, b.IOMMUGroup)
	}
	t.Cleanup(func() {
		for _, n := range []string{a.Address, b.Address} {
			if d, err := pci.System.Lookup(n); err == nil && d.Driver == pci.VFIODriver {
				if _, err := pci.System.Unbind(n); err != nil {
					t.Errorf("give %s back to e1000e: %v", n, err)
				}
			}
		}
	})
	return a.Address, b.Address
}

// TestInGuestGroupViability takes one of two devices that share an IOMMU
// group: the group is not viable while the other is still driven by the
// kernel, and the error names it. Once both are bound, both open in one
// container, with the NIC of another group, and share its DMA memory.
func TestInGuestGroupViability(t *testing.T) {
	addr := guestNIC(t)
	a, b := groupNICs(t)
	reserveHugepages(t, 4)
	if _, err := pci.System.Bind(a, false); err != nil {
		t.Fatal(err)
	}
	c, err := NewContainer(Options{Hugepages: dma.RequireHugepages})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Open(a)
	if !errors.Is(err, ErrGroupNotViable) {
		t.Fatalf("open with a group-mate on e1000e: %v", err)
	}
	t.Logf("reported: %v", err)
	for _, w := range []string{b, "e1000e", "nicctl bind " + b} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the error does not say %q", w)
		}
	}
	if strings.Contains(err.Error(), a+" (") {
		t.Error("the error names the device being opened as a blocker")
	}
	if _, err := pci.System.Bind(b, false); err != nil {
		t.Fatal(err)
	}
	da, err := c.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := c.Open(b)
	if err != nil {
		t.Fatalf("second device of the same group: %v", err)
	}
	dn, err := c.Open(addr)
	if err != nil {
		t.Fatalf("device of another group in the same container: %v", err)
	}
	if da.IOMMUGroup() != db.IOMMUGroup() || da.IOMMUGroup() == dn.IOMMUGroup() {
		t.Errorf("groups %d %d %d", da.IOMMUGroup(), db.IOMMUGroup(), dn.IOMMUGroup())
	}
	if da.DMA() != db.DMA() || da.DMA() != dn.DMA() {
		t.Error("devices of one container have different allocators")
	}
	// Memory allocated through one device is reachable by the others: one
	// ring, used in turn by each NIC.
	ring, err := da.DMA().Alloc(4096, 128)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := da.DMA().Alloc(2048, 128)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range []*Device{db, dn, da} {
		resetE1000e(t, d)
		descs := ring.Bytes()
		desc := descs[i*txDescSize:]
		putTxDesc(desc, buf.IOVA(), 60)
		txRing(d, ring.IOVA()+uint64(i*txDescSize), 8)
		d.Write32(e1000TDT, 1)
		if !waitDD(desc, 5*time.Second) {
			t.Errorf("%s did not write back a descriptor in memory allocated through %s", d.Name(), da.Name())
		}
		d.Write32(e1000TCTL, 0)
	}
	// Closing one device of the group leaves the other working.
	if err := da.Close(); err != nil {
		t.Fatal(err)
	}
	if db.Read32(e1000STATUS) == 0xFFFFFFFF {
		t.Error("the group-mate stopped answering when one device closed")
	}
	ring.Free()
	buf.Free()
}

// TestInGuestNicctl runs the nicctl binary of the initramfs against the
// guest's real sysfs: devices, unbind, the refusal to take an interface that
// is up, bind.
func TestInGuestNicctl(t *testing.T) {
	addr := guestNIC(t)
	nicctl := "/bin/nicctl"
	if _, err := os.Stat(nicctl); err != nil {
		t.Fatalf("nicctl is not in the guest: %v", err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(nicctl, args...).CombinedOutput()
		t.Logf("nicctl %s:\n%s", strings.Join(args, " "), out)
		return string(out), err
	}
	driver := func() string {
		d, err := pci.System.Lookup(addr)
		if err != nil {
			t.Fatal(err)
		}
		return d.Driver
	}
	out, err := run("devices", "--json")
	if err != nil {
		t.Fatal(err)
	}
	// devices --json: pci.Device's fields, with the IDs as hex strings.
	var devs []struct {
		Address    string `json:"address"`
		ID         string `json:"id"`
		Driver     string `json:"driver"`
		IOMMUGroup int    `json:"iommu_group"`
		Supported  bool   `json:"supported"`
		Vendor     string `json:"vendor"`
		Device     string `json:"device"`
		Class      string `json:"class"`
	}
	if err := json.Unmarshal([]byte(out), &devs); err != nil {
		t.Fatalf("devices --json: %v", err)
	}
	found := false
	for _, d := range devs {
		if d.Address == addr {
			found = true
			if d.Driver != pci.VFIODriver || d.ID != "8086:10d3" || d.Vendor != "0x8086" || d.Device != "0x10d3" ||
				d.Class != "0x020000" || d.IOMMUGroup < 0 || d.Supported {
				t.Errorf("devices --json says %+v", d)
			}
		}
	}
	if !found {
		t.Fatalf("devices --json does not list %s", addr)
	}
	if out, err := run("devices"); err != nil || !strings.Contains(out, addr) || !strings.Contains(out, "vfio-pci") {
		t.Errorf("devices table: %v", err)
	}
	if _, err := run("unbind", addr); err != nil {
		t.Fatal(err)
	}
	if got := driver(); got != "e1000e" {
		t.Fatalf("after nicctl unbind the driver is %q, want e1000e", got)
	}
	if out, err := run("devices"); err != nil || !strings.Contains(out, "e1000e") {
		t.Errorf("devices after unbind: %v", err)
	}
	// An interface that is up is refused without --force.
	ifc := ""
	if d, err := pci.System.Lookup(addr); err == nil && len(d.Interfaces) > 0 {
		ifc = d.Interfaces[0].Name
	}
	if ifc == "" {
		t.Fatal("the e1000e driver created no interface")
	}
	if err := exec.Command("ip", "link", "set", ifc, "up").Run(); err != nil {
		t.Fatalf("ip link set %s up: %v", ifc, err)
	}
	out, err = run("bind", addr)
	if err == nil || !strings.Contains(out, "up") || !strings.Contains(out, "--force") {
		t.Errorf("bind of an interface that is up: %v", err)
	}
	if got := driver(); got != "e1000e" {
		t.Fatalf("a refused bind changed the driver to %q", got)
	}
	if _, err := run("bind", "--force", addr); err != nil {
		t.Fatal(err)
	}
	if got := driver(); got != pci.VFIODriver {
		t.Fatalf("after nicctl bind --force the driver is %q", got)
	}
	// Hugepages: show and reserve.
	if out, err := run("hugepages"); err != nil || !strings.Contains(out, "node") {
		t.Errorf("hugepages: %v", err)
	}
	before, _ := hugepages.System.Status()
	if len(before) > 0 && before[0].Free == 0 {
		// Opening for the driver, which wants hugepages, says how to get them.
		if out, err := run("open", "--hugepages", addr); err == nil || !strings.Contains(out, "nicctl hugepages --reserve") {
			t.Errorf("open --hugepages without hugepages: %v", err)
		}
	} else {
		t.Errorf("hugepages are reserved before the test (%+v): the no-hugepages message is not checked", before)
	}
	if _, err := run("hugepages", "--reserve", "3"); err != nil {
		t.Error(err)
	}
	if p, _ := hugepages.System.Status(); len(p) == 0 || p[0].Total != 3 {
		t.Errorf("after hugepages --reserve 3: %+v", p)
	}
	if _, err := run("hugepages", "--reserve", "5", "--node", "0"); err != nil {
		t.Error(err)
	}
	if p, _ := hugepages.System.Status(); len(p) < 2 || p[1].Node != 0 || p[1].Total != 5 || p[0].Total != 5 {
		t.Errorf("after hugepages --reserve 5 --node 0: %+v", p)
	}
	if len(before) > 0 {
		hugepages.System.Reserve(-1, before[0].Total)
	}
	// nicctl opens the device through VFIO when given its address.
	if out, err := run("open", addr); err != nil || !strings.Contains(out, "8086:10d3") || !strings.Contains(out, "BAR0") {
		t.Errorf("open: %v", err)
	}
}

// TestInGuestUnprivilegedErrors opens the NIC from a child process that runs
// as an unprivileged user: first the group file is root's (ErrPermission,
// which says what to do); then the group file is the user's but the
// locked-memory limit is 64 KiB, so pinning DMA memory fails (ErrMemlock,
// which says ulimit -l).
func TestInGuestUnprivilegedErrors(t *testing.T) {
	addr := guestNIC(t)
	d, err := pci.System.Lookup(addr)
	if err != nil {
		t.Fatal(err)
	}
	groupFile := "/dev/vfio/" + strconv.Itoa(d.IOMMUGroup)
	const nobody = 65534
	child := func() string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestInGuestHelperUnprivileged$", "-test.v")
		cmd.Env = append(os.Environ(), "VERINIC_UNPRIVILEGED=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	out := child()
	t.Logf("as uid %d with /dev/vfio/%d root's:\n%s", nobody, d.IOMMUGroup, out)
	if !strings.Contains(out, "open-error: ") || !strings.Contains(out, "permission denied") || !strings.Contains(out, "run as root") {
		t.Errorf("an unprivileged open did not explain the permission problem")
	}
	if err := os.Chown(groupFile, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	defer os.Chown(groupFile, 0, 0)
	out = child()
	t.Logf("as uid %d owning /dev/vfio/%d, ulimit -l 64:\n%s", nobody, d.IOMMUGroup, out)
	if !strings.Contains(out, "opened") || !strings.Contains(out, "map-error: ") || !strings.Contains(out, "locked-memory limit") || !strings.Contains(out, "ulimit -l") {
		t.Errorf("a DMA mapping over the memlock limit did not explain it")
	}
}

// TestInGuestHelperUnprivileged runs in the child of
// TestInGuestUnprivilegedErrors and reports what happened on its output.
func TestInGuestHelperUnprivileged(t *testing.T) {
	if os.Getenv("VERINIC_UNPRIVILEGED") == "" {
		t.Skip("helper process of TestInGuestUnprivilegedErrors")
	}
	lim := unix.Rlimit{Cur: 64 << 10, Max: 64 << 10}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		t.Fatal(err)
	}
	c, err := NewContainer(Options{Hugepages: dma.NoHugepages})
	if err != nil {
		os.Stdout.WriteString("container-error: " + err.Error() + "\n")
		return
	}
	defer c.Close()
	d, err := c.Open(os.Getenv(guestEnv))
	if err != nil {
		os.Stdout.WriteString("open-error: " + err.Error() + "\n")
		return
	}
	os.Stdout.WriteString("opened\n")
	dma.Warnf = nil
	if _, err := d.DMA().Alloc(1<<20, 0); err != nil {
		os.Stdout.WriteString("map-error: " + err.Error() + "\n")
		return
	}
	os.Stdout.WriteString("mapped\n")
}

// e1000e receive registers and descriptor bits (82574 datasheet, chapter 10).
const (
	e1000RCTL  = 0x0100
	e1000RDBAH = 0x2804
	e1000RDLEN = 0x2808
	e1000RDH   = 0x2810
	e1000RDT   = 0x2818
	e1000GPRC  = 0x4074 // good packets received (clear on read)

	ctrlSLU      = 1 << 6
	statusLU     = 1 << 1
	rctlEN       = 1 << 1
	rctlUPE      = 1 << 3
	rctlMPE      = 1 << 4
	rctlBAM      = 1 << 15
	rctlSECRC    = 1 << 26
	rxStatusDD   = 0x01
	rxStatusEOP  = 0x02
	rxDescSize   = 16
	rxBufferSize = 2048
)

// TestInGuestDMAReceive wires two of the guest's NICs through a QEMU hub
// (inside QEMU: nothing leaves the machine): the first sends a frame from
// hugepage memory, the second writes it by DMA into a mempool buffer of
// ours, through the IOMMU, and writes back its descriptor.
func TestInGuestDMAReceive(t *testing.T) {
	tx := guestNIC(t)
	nics := strings.Fields(os.Getenv(guestNICsEnv))
	if len(nics) != 4 {
		t.Fatalf("the guest has NICs %v, want four", nics)
	}
	rx := nics[3]
	if _, err := pci.System.Bind(rx, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pci.System.Unbind(rx) })
	reserveHugepages(t, 4)
	c, dt := openGuestDevice(t, tx)
	dr, err := c.Open(rx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Device{dt, dr} {
		resetE1000e(t, d)
		d.Write32(e1000CTRL, d.Read32(e1000CTRL)|ctrlSLU)
	}
	deadline := time.Now().Add(5 * time.Second)
	for dr.Read32(e1000STATUS)&statusLU == 0 || dt.Read32(e1000STATUS)&statusLU == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("link not up: STATUS %#x / %#x", dt.Read32(e1000STATUS), dr.Read32(e1000STATUS))
		}
		time.Sleep(10 * time.Millisecond)
	}
	alloc := dr.DMA()
	pool, err := dma.NewMempool(alloc, dma.MempoolConfig{Name: "guest-rx", Buffers: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release()
	rring, err := alloc.Alloc(8*rxDescSize, 128)
	if err != nil {
		t.Fatal(err)
	}
	defer rring.Free()
	rdesc := rring.Bytes()
	bufs := make([]dma.Packet, 8)
	for i := range bufs {
		if bufs[i], err = pool.Alloc(); err != nil {
			t.Fatal(err)
		}
		room := bufs[i].Room()
		for j := range room[:rxBufferSize] {
			room[j] = 0xee
		}
		binary.LittleEndian.PutUint64(rdesc[i*rxDescSize:], bufs[i].IOVA())
		atomic.StoreUint64((*uint64)(unsafe.Pointer(&rdesc[i*rxDescSize+8])), 0)
	}
	dr.Write32(e1000RDBAL, uint32(rring.IOVA()))
	dr.Write32(e1000RDBAH, uint32(rring.IOVA()>>32))
	dr.Write32(e1000RDLEN, 8*rxDescSize)
	dr.Write32(e1000RDH, 0)
	dr.Write32(e1000RDT, 7)
	dr.Write32(e1000RCTL, rctlEN|rctlBAM|rctlUPE|rctlMPE|rctlSECRC)

	// Send one broadcast frame from the other NIC.
	tring, err := dt.DMA().Alloc(8*txDescSize, 128)
	if err != nil {
		t.Fatal(err)
	}
	defer tring.Free()
	frameBuf, err := dt.DMA().Alloc(2048, 128)
	if err != nil {
		t.Fatal(err)
	}
	defer frameBuf.Free()
	frame := frameBuf.Bytes()[:100]
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
	for i := 14; i < len(frame); i++ {
		frame[i] = byte(i * 7)
	}
	putTxDesc(tring.Bytes(), frameBuf.IOVA(), len(frame))
	txRing(dt, tring.IOVA(), 8)
	dt.Write32(e1000TDT, 1)
	if !waitDD(tring.Bytes(), 5*time.Second) {
		t.Fatal("the sending NIC did not complete the frame")
	}
	status := func() uint8 { return uint8(atomic.LoadUint32((*uint32)(unsafe.Pointer(&rdesc[12])))) }
	deadline = time.Now().Add(5 * time.Second)
	for status()&rxStatusDD == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no frame received: RDH %d, GPRC %d, RCTL %#x, STATUS %#x", dr.Read32(e1000RDH), dr.Read32(e1000GPRC), dr.Read32(e1000RCTL), dr.Read32(e1000STATUS))
		}
		time.Sleep(time.Millisecond)
	}
	if status()&rxStatusEOP == 0 {
		t.Errorf("received descriptor status %#x lacks EOP", status())
	}
	n := int(binary.LittleEndian.Uint16(rdesc[8:]))
	got := bufs[0].Room()[:n]
	t.Logf("received %d bytes at IOVA %#x: % x ...", n, bufs[0].IOVA(), got[:16])
	if n != len(frame) || !bytes.Equal(got, frame) {
		t.Errorf("received %d bytes %x, want the %d sent", n, got, len(frame))
	}
	if rest := bufs[0].Room()[n : n+16]; !bytes.Equal(rest, bytes.Repeat([]byte{0xee}, 16)) {
		t.Errorf("the NIC wrote past the frame: % x", rest)
	}
	dr.Write32(e1000RCTL, 0)
	dt.Write32(e1000TCTL, 0)
	for _, b := range bufs {
		b.Free()
	}
}

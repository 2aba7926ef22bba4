package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verinic/verinic/dma"
	"github.com/verinic/verinic/igb"
	"github.com/verinic/verinic/ixgbe"
	"github.com/verinic/verinic/ixgbe/ixgbesim"
	"github.com/verinic/verinic/proto/link"
)

func init() {
	register(&command{
		name:    "stats",
		summary: "bring a device up and show what the driver learnt about it (IDs, EEPROM, SFP+ module) and its counters",
		usage:   "[--json] [--send N] [--sfp sr|lr|da|none] DEVICE",
		run:     runStats,
	})
}

// statsReport is what nicctl stats --json prints.
type statsReport struct {
	Name      string           `json:"name"`
	MAC       string           `json:"mac"`
	Link      string           `json:"link"`
	MaxFrame  int              `json:"max_frame"`
	Info      ixgbe.DeviceInfo `json:"info"`
	Stats     ixgbe.Stats      `json:"stats"`
	Sent      int              `json:"sent"`
	Received  int              `json:"received"`
	Supported string           `json:"support"`
	// IOMMUFaults are the DMA faults the kernel logged for the device while
	// the command ran (nil when not watched: FaultsNotWatched says why).
	IOMMUFaults      []string `json:"iommu_faults"`
	FaultsNotWatched string   `json:"faults_not_watched,omitempty"`
}

func runStats(args []string) error {
	fs := newFlagSet("stats")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	send := fs.Int("send", 0, "send this many 60-byte broadcast test frames first (a simulated device's loopback plug brings them back)")
	sfp := fs.String("sfp", "sr", "simulated devices only: the module in the SFP+ cage (sr, lr, da, none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("name one device: a PCI address (nicctl devices lists them) or sim")
	}
	if *send < 0 {
		return usagef("--send %d: give a count of frames, 0 or more", *send)
	}
	name := fs.Arg(0)
	var dev ixgbe.Device
	var err error
	if strings.HasPrefix(name, "sim") {
		kinds := map[string]ixgbesim.SFPKind{"sr": ixgbesim.SFPShortReach, "lr": ixgbesim.SFPLongReach, "da": ixgbesim.SFPDirectAttach, "none": ixgbesim.SFPAbsent}
		kind, ok := kinds[*sfp]
		if !ok {
			return usagef("--sfp %q: want sr, lr, da or none", *sfp)
		}
		dev, err = openSimDeviceWith(name, ixgbesim.Config{SFP: ixgbesim.SFPModule{Kind: kind}})
	} else {
		dev, err = openDevice(name)
	}
	if err != nil {
		return err
	}
	defer closeDevice(dev)
	faults := watchFaults(dev)
	defer faults.close()
	if familyOf(dev) == "82576" {
		return runIGBStats(dev, *asJSON, *send, faults)
	}
	nic, err := ixgbe.New(dev, ixgbe.Config{Promiscuous: true, LinkTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer nic.Close()
	rep := statsReport{Name: nic.Name(), MAC: nic.MAC().String(), MaxFrame: nic.MaxFrameSize(), Info: nic.Info()}
	if *send > 0 {
		rep.Sent, rep.Received, err = statsTraffic(nic, *send)
		if err != nil {
			return err
		}
	}
	rep.Link = nic.Link().String()
	if rep.Stats, err = nic.ReadStats(); err != nil {
		return err
	}
	rep.IOMMUFaults, rep.FaultsNotWatched = faults.collect()
	s := ixgbe.LookupDevice(rep.Info.VendorID, rep.Info.DeviceID)
	rep.Supported = "yes"
	if rep.Info.DeviceID == 0 {
		rep.Supported = "unknown (the device reports no PCI IDs)"
	} else if !s.Supported {
		rep.Supported = "no: " + s.Why
	}
	if *asJSON {
		return printJSON(rep)
	}
	printStats(os.Stdout, rep)
	return nil
}

// statsTraffic sends n test frames on queue 0 and receives for a while.
func statsTraffic(nic link.Link, n int) (sent, received int, err error) {
	pool := nic.RxPool(0)
	batch := make([]dma.Packet, 32)
	rx := make([]dma.Packet, 64)
	mac := nic.MAC()
	deadline := time.Now().Add(2 * time.Second)
	for (sent < n || received < sent) && time.Now().Before(deadline) {
		k := 0
		for ; k < len(batch) && sent+k < n; k++ {
			p, err := pool.Alloc()
			if err != nil {
				break
			}
			p.Len = 60
			d := p.Data()
			for i := range d {
				d[i] = 0
			}
			copy(d, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			copy(d[6:], mac)
			d[12], d[13] = 0x88, 0xB5 // local experimental ether type
			batch[k] = p
		}
		took, err := nic.TxBatch(0, batch[:k])
		for _, p := range batch[took:k] {
			p.Free()
		}
		if err != nil {
			return sent, received, err
		}
		sent += took
		got, err := nic.RxBatch(0, rx)
		if err != nil {
			return sent, received, err
		}
		for _, p := range rx[:got] {
			p.Free()
		}
		received += got
		if got == 0 && took == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	return sent, received, nil
}

func printStats(w io.Writer, r statsReport) {
	in := r.Info
	fmt.Fprintf(w, "%s: %s", r.Name, in.Model)
	if in.DeviceID != 0 {
		fmt.Fprintf(w, " (%04x:%04x, %s)", in.VendorID, in.DeviceID, in.Media)
	}
	fmt.Fprintf(w, ", supported: %s\n", r.Supported)
	fmt.Fprintf(w, "  MAC %s (EEPROM %s, matches RAL[0]/RAH[0]: %v), link %s, max frame %d bytes\n",
		r.MAC, orDash(in.PermanentMAC.String()), in.RARMatchesEEPROM, r.Link, r.MaxFrame)
	fmt.Fprintf(w, "  EEPROM: checksum %#04x (valid), PBA %s, eTrack %#08x\n", in.EEPROMChecksum, orDash(in.PBA), in.ETrackID)
	fmt.Fprintf(w, "  SFP+ module: %s\n", in.SFP)
	if in.SFPError != "" {
		fmt.Fprintf(w, "  SFP+ module not identified: %s\n", in.SFPError)
	}
	if in.DMATXCTLFixed {
		fmt.Fprintf(w, "  note: DMATXCTL read %#08x after reset; its VLAN ether type was set to 0x8100\n", in.DMATXCTLReset)
	}
	if r.Sent > 0 {
		fmt.Fprintf(w, "  test frames: %d sent, %d received\n", r.Sent, r.Received)
	}
	printFaults(w, r.IOMMUFaults, r.FaultsNotWatched)
	s := r.Stats
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COUNTER\tREGISTER\tVALUE")
	row := func(name, reg string, v uint64) { fmt.Fprintf(tw, "%s\t%s\t%d\n", name, reg, v) }
	row("rx packets", "GPRC", s.RxPackets)
	row("rx bytes", "GORC", s.RxBytes)
	row("tx packets", "GPTC", s.TxPackets)
	row("tx bytes", "GOTC", s.TxBytes)
	row("rx broadcast", "BPRC", s.RxBroadcast)
	row("rx multicast", "MPRC", s.RxMulticast)
	row("tx broadcast", "BPTC", s.TxBroadcast)
	row("tx multicast", "MPTC", s.TxMulticast)
	row("rx missed", "MPC", s.RxMissed)
	row("rx no buffers", "RNBC", s.RxNoBuffers)
	row("rx dropped (ring full)", "QPRDC", s.RxDropped)
	row("rx CRC errors", "CRCERRS", s.RxCRCErrors)
	row("rx checksum errors", "XEC", s.RxChecksumErrors)
	row("rx illegal bytes", "ILLERRC", s.RxIllegalBytes)
	row("rx error bytes", "ERRBC", s.RxErrorBytes)
	row("rx length errors", "RLEC", s.RxLengthErrors)
	row("rx undersize", "RUC", s.RxUndersize)
	row("rx fragments", "RFC", s.RxFragments)
	row("rx oversize", "ROC", s.RxOversize)
	row("rx jabbers", "RJC", s.RxJabbers)
	row("rx filtered", "RXNFGPC-GPRC-MPC", s.RxFiltered)
	row("MAC local faults", "MLFC", s.MACLocalFaults)
	row("MAC remote faults", "MRFC", s.MACRemoteFaults)
	row("tx XON", "LXONTXC", s.TxXon)
	row("tx XOFF", "LXOFFTXC", s.TxXoff)
	row("rx XON", "LXONRXCNT", s.RxXon)
	row("rx XOFF", "LXOFFRXCNT", s.RxXoff)
	for i := 0; i < 8; i++ {
		if s.TxPXon[i]|s.TxPXoff[i]|s.RxPXon[i]|s.RxPXoff[i] != 0 {
			row(fmt.Sprintf("priority %d tx XON/XOFF", i), "PXONTXC/PXOFFTXC", s.TxPXon[i]+s.TxPXoff[i])
			row(fmt.Sprintf("priority %d rx XON/XOFF", i), "PXONRXCNT/PXOFFRXCNT", s.RxPXon[i]+s.RxPXoff[i])
		}
	}
	var bad, free uint64
	for _, q := range s.Queues {
		bad += q.TxBadPackets
		free += q.TxFreeErrors
	}
	row("tx refused by the driver", "-", bad)
	tw.Flush()
	if free != 0 {
		fmt.Fprintf(w, "  %d sent buffers were refused by their pool\n", free)
	}
}

func orDash(s string) string {
	if s == "" || s == "<nil>" {
		return "-"
	}
	return s
}

// igbStatsReport is what nicctl stats --json prints for an 82576.
type igbStatsReport struct {
	Name             string         `json:"name"`
	Family           string         `json:"family"`
	MAC              string         `json:"mac"`
	Link             string         `json:"link"`
	MaxFrame         int            `json:"max_frame"`
	Info             igb.DeviceInfo `json:"info"`
	Stats            igb.Stats      `json:"stats"`
	Sent             int            `json:"sent"`
	Received         int            `json:"received"`
	Supported        string         `json:"support"`
	IOMMUFaults      []string       `json:"iommu_faults"`
	FaultsNotWatched string         `json:"faults_not_watched,omitempty"`
}

// runIGBStats is nicctl stats on an 82576 (igb): the same report, with the
// 82576's information and counters.
func runIGBStats(dev ixgbe.Device, asJSON bool, send int, faults *faultWatch) error {
	nic, err := igb.New(dev, igb.Config{Promiscuous: true, LinkTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer nic.Close()
	rep := igbStatsReport{Name: nic.Name(), Family: "82576", MAC: nic.MAC().String(), MaxFrame: nic.MaxFrameSize(), Info: nic.Info(), Supported: "yes"}
	if send > 0 {
		if rep.Sent, rep.Received, err = statsTraffic(nic, send); err != nil {
			return err
		}
	}
	rep.Link = nic.Link().String()
	if rep.Stats, err = nic.ReadStats(); err != nil {
		return err
	}
	rep.IOMMUFaults, rep.FaultsNotWatched = faults.collect()
	if asJSON {
		return printJSON(rep)
	}
	w := os.Stdout
	in := rep.Info
	fmt.Fprintf(w, "%s: %s (%04x:%04x, %s, driver igb), supported: %s\n", rep.Name, in.Model, in.VendorID, in.DeviceID, in.Media, rep.Supported)
	fmt.Fprintf(w, "  MAC %s (EEPROM %s, matches RAL[0]/RAH[0]: %v), link %s, max frame %d bytes\n",
		rep.MAC, orDash(in.PermanentMAC.String()), in.RARMatchesEEPROM, rep.Link, rep.MaxFrame)
	fmt.Fprintf(w, "  EEPROM: checksum word %#04x, auto-read done after reset: %v", in.EEPROMChecksum, in.EEPROMAutoRead)
	if in.EEPROMError != "" {
		fmt.Fprintf(w, " (%s)", in.EEPROMError)
	}
	fmt.Fprintf(w, "\n  PHY: ID %#08x", in.PHYID)
	if in.PHYError != "" {
		fmt.Fprintf(w, " (%s)", in.PHYError)
	}
	fmt.Fprintln(w)
	if rep.Sent > 0 {
		fmt.Fprintf(w, "  test frames: %d sent, %d received\n", rep.Sent, rep.Received)
	}
	printFaults(w, rep.IOMMUFaults, rep.FaultsNotWatched)
	s := rep.Stats
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COUNTER\tREGISTER\tVALUE")
	for _, r := range []struct {
		name, reg string
		v         uint64
	}{
		{"rx packets", "GPRC", s.RxPackets}, {"rx bytes", "GORC", s.RxBytes},
		{"tx packets", "GPTC", s.TxPackets}, {"tx bytes", "GOTC", s.TxBytes},
		{"rx broadcast", "BPRC", s.RxBroadcast}, {"rx multicast", "MPRC", s.RxMulticast},
		{"tx broadcast", "BPTC", s.TxBroadcast}, {"tx multicast", "MPTC", s.TxMulticast},
		{"rx missed", "MPC", s.RxMissed}, {"rx no buffers", "RNBC", s.RxNoBuffers},
		{"rx dropped (queue without descriptors)", "RQDPC", s.RxDropped},
		{"rx CRC errors", "CRCERRS", s.RxCRCErrors}, {"rx errors", "RXERRC", s.RxErrors},
		{"rx length errors", "RLEC", s.RxLengthErrors}, {"rx undersize", "RUC", s.RxUndersize},
		{"rx fragments", "RFC", s.RxFragments}, {"rx oversize", "ROC", s.RxOversize}, {"rx jabbers", "RJC", s.RxJabbers},
		{"tx TSO contexts", "TSCTC", s.TxTSOContexts}, {"tx TSO failures", "TSCTFC", s.TxTSOFailures},
		{"rx XON/XOFF", "XONRXC/XOFFRXC", s.RxXon + s.RxXoff}, {"tx XON/XOFF", "XONTXC/XOFFTXC", s.TxXon + s.TxXoff},
	} {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", r.name, r.reg, r.v)
	}
	return tw.Flush()
}

// printFaults reports the IOMMU faults logged for the device while the
// command ran.
func printFaults(w io.Writer, faults []string, notWatched string) {
	switch {
	case notWatched == "simulated device":
	case faults == nil:
		fmt.Fprintf(w, "  IOMMU faults: not watched (%s)\n", notWatched)
	case len(faults) == 0:
		fmt.Fprintln(w, "  IOMMU faults: none")
	default:
		fmt.Fprintf(w, "  IOMMU faults: %d (the device tried DMA the IOMMU refused: a driver bug, or memory unmapped under it)\n", len(faults))
		for _, f := range faults {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
}

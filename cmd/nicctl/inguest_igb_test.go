package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/verinic/verinic/internal/guest"
	"github.com/verinic/verinic/vfio/hugepages"
	"github.com/verinic/verinic/vfio/pci"
)

// TestInGuestIGBNicctl runs nicctl's device commands on QEMU's 82576s in
// the igb guest (TestGuestIGB in vfio/ boots it and runs this package's
// TestInGuestIGB tests there): devices lists both as supported by igb, and
// stats brings one up through the family opener (igb.New, picked by its
// PCI ID) and reports its link, EEPROM and counters, with test frames
// sent, and the IOMMU faults the kernel logged meanwhile (watched: none).
func TestInGuestIGBNicctl(t *testing.T) {
	nics := strings.Fields(os.Getenv(guest.IGBNICsEnv))
	if len(nics) != 2 {
		t.Skip("runs only inside the QEMU igb guest (go test ./vfio/ -run TestGuestIGB -v boots it)")
	}
	code, out, errOut := runCaptured(t, "devices", "--json")
	var devs []struct {
		Address   string
		Family    string
		Supported bool
		Support   string
	}
	if err := json.Unmarshal([]byte(out), &devs); code != 0 || err != nil {
		t.Fatalf("devices --json: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	for _, addr := range nics {
		found := false
		for _, d := range devs {
			if d.Address == addr {
				found = true
				if d.Family != "82576" || !d.Supported || d.Support != "yes: 82576 (igb)" {
					t.Errorf("devices --json: %+v", d)
				}
			}
		}
		if !found {
			t.Errorf("devices --json does not list %s: %s", addr, out)
		}
	}
	addr := nics[0]
	if _, err := pci.System.Bind(addr, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pci.System.Unbind(addr); err != nil {
			t.Errorf("give %s back to igb: %v", addr, err)
		}
	})
	pools, err := hugepages.System.Status()
	if err != nil {
		t.Fatal(err)
	}
	if pools[0].Free < 16 {
		if _, err := hugepages.System.Reserve(-1, pools[0].Total+16-pools[0].Free); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hugepages.System.Reserve(-1, pools[0].Total) })
	}
	code, out, errOut = runCaptured(t, "stats", "--json", "--send", "10", addr)
	var rep struct {
		Family, MAC, Link, Support string
		Stats                      struct {
			TxPackets uint64 `json:"tx_packets"`
		}
		Sent        int
		IOMMUFaults []string `json:"iommu_faults"`
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("stats --json %s: exit %d, %v\n%s\n%s", addr, code, err, out, errOut)
	}
	t.Logf("stats %s: %+v", addr, rep)
	if rep.Family != "82576" || rep.Support != "yes" || !strings.HasPrefix(rep.Link, "up 1000") || rep.MAC != "52:54:00:76:00:01" ||
		rep.Sent != 10 || rep.Stats.TxPackets != 10 || rep.IOMMUFaults == nil || len(rep.IOMMUFaults) != 0 {
		t.Errorf("stats --json %s: %s", addr, out)
	}
}

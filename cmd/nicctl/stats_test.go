package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNicctlStatsSim(t *testing.T) {
	for _, c := range []struct{ sfp, want string }{
		{"sr", "10GBASE-SR"}, {"lr", "10GBASE-LR"}, {"da", "direct attach (passive)"}, {"none", "no module"},
	} {
		code, out, errOut := runCaptured(t, "stats", "--sfp", c.sfp, "--send", "50", "sim7")
		if code != 0 || !strings.Contains(out, "SFP+ module: "+c.want) || !strings.Contains(out, "PBA E66560-002") ||
			!strings.Contains(out, "8086:10fb") || !strings.Contains(out, "50 sent, 50 received") {
			t.Fatalf("stats --sfp %s: exit %d\n%s\n%s", c.sfp, code, out, errOut)
		}
	}
	code, out, errOut := runCaptured(t, "stats", "--json", "--send", "10", "sim")
	var r struct {
		Info struct {
			DeviceID uint16
			SFP      struct {
				Present bool
				Type    string
			}
			PBA string
		}
		Stats struct {
			RxPackets, TxPackets uint64
			RxChecksumErrors     uint64
		}
		Support string
	}
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Info.DeviceID != 0x10FB || !r.Info.SFP.Present ||
		r.Stats.TxPackets != 10 || r.Stats.RxPackets != 10 || r.Support != "yes" {
		t.Fatalf("stats --json: exit %d, %v, %+v\n%s\n%s", code, err, r, out, errOut)
	}
	wantUsage(t, []string{"stats", "--sfp", "xx", "sim"}, "--sfp")
}

func TestNicctlDevicesIDs(t *testing.T) {
	code, out, errOut := runCaptured(t, "devices", "--ids")
	if code != 0 || !strings.Contains(out, "8086:10fb  ixgbe   82599 SFP+ (X520)") || !strings.Contains(out, "82599 KX4") ||
		!strings.Contains(out, "no: init forces 10 Gb/s serial") || !strings.Contains(out, "8086:10c9  igb     82576 ") ||
		!strings.Contains(out, "82576 fiber") {
		t.Fatalf("devices --ids: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCaptured(t, "devices", "--ids", "--json")
	var rows []struct {
		Device    string
		Supported bool
		Why       string
	}
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 16+9 {
		t.Fatalf("devices --ids --json: exit %d, %v, %d rows", code, err, len(rows))
	}
	for _, r := range rows {
		if r.Supported == (r.Why != "") {
			t.Fatalf("%+v: a verdict without its reason", r)
		}
	}
}

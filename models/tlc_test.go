package models

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestTLC runs tla/run-tlc.sh (TLC on every config and trace spec) when
// TLA2TOOLS_JAR names the TLA+ tools jar, and checks that TLC's counts are
// the ones recorded in tla/README.md.
func TestTLC(t *testing.T) {
	if os.Getenv("TLA2TOOLS_JAR") == "" {
		t.Skip("skipped TLC: TLA2TOOLS_JAR is not set (obtain tla2tools.jar from the TLA+ project's releases)")
	}
	if testing.Short() {
		t.Skip("skipped TLC in -short mode")
	}
	out, err := exec.Command("bash", "../tla/run-tlc.sh").CombinedOutput()
	t.Logf("run-tlc.sh:\n%s", out)
	if err != nil {
		t.Fatalf("run-tlc.sh: %v", err)
	}
	got := map[string]string{}
	gen := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == "RESULT" {
			got[f[1]] = f[3] + " " + f[4]
		}
		if len(f) >= 7 && f[0] == "RESULT" {
			gen[f[1]] = f[6]
		}
	}
	for _, row := range readTCPTable(t) {
		want := "distinct=" + itoa(row.distinct) + " depth=" + itoa(row.depth)
		if got[row.config] != want || gen[row.config] != "generated="+itoa(row.generated) {
			t.Errorf("%s: TLC printed %q %q, tla/README.md records %q generated=%d", row.config,
				got[row.config], gen[row.config], want, row.generated)
		}
	}
	rows := readTLCTable(t)
	// The trace specs' table: | config | trace, ring | result | distinct | depth |
	b, err := os.ReadFile("../tla/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 7 || !strings.Contains(cells[1], "Trace") {
			continue
		}
		d, err1 := strconv.Atoi(strings.TrimSpace(cells[4]))
		h, err2 := strconv.Atoi(strings.TrimSpace(cells[5]))
		if err1 == nil && err2 == nil {
			rows = append(rows, tlcRow{config: strings.TrimSpace(cells[1]), distinct: d, depth: h})
		}
	}
	for _, row := range rows {
		want := "distinct=" + itoa(row.distinct) + " depth=" + itoa(row.depth)
		if got[row.config] != want {
			t.Errorf("%s: TLC printed %q, tla/README.md records %q", row.config, got[row.config], want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

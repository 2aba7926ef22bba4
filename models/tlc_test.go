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
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == "RESULT" {
			got[f[1]] = f[3] + " " + f[4]
		}
	}
	for _, row := range readTLCTable(t) {
		want := "distinct=" + itoa(row.distinct) + " depth=" + itoa(row.depth)
		if got[row.config] != want {
			t.Errorf("%s: TLC printed %q, tla/README.md records %q", row.config, got[row.config], want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

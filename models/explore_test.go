package models

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// tlcRow is one row of tla/README.md's results table.
type tlcRow struct {
	config    string
	n, b      uint32
	distinct  int
	depth     int
	generated int
}

func readTLCTable(t *testing.T) []tlcRow {
	t.Helper()
	f, err := os.Open("../tla/README.md")
	if err != nil {
		t.Fatalf("reading TLC results: %v", err)
	}
	defer f.Close()
	var rows []tlcRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) != 10 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		distinct, err1 := strconv.Atoi(cells[5])
		depth, err2 := strconv.Atoi(cells[6])
		b, err3 := strconv.Atoi(cells[3])
		if err1 != nil || err2 != nil || err3 != nil || cells[4] != "none" {
			continue
		}
		n, _ := strconv.Atoi(cells[2])
		generated, _ := strconv.Atoi(cells[7])
		rows = append(rows, tlcRow{config: cells[1], n: uint32(n), b: uint32(b), distinct: distinct, depth: depth, generated: generated})
	}
	if len(rows) < 7 {
		t.Fatalf("found %d result rows in tla/README.md, want 7", len(rows))
	}
	return rows
}

// The Go transcriptions reach exactly the states TLC reaches, for every
// config in tla/README.md, and every property holds there.
func TestExplorerMatchesTLC(t *testing.T) {
	for _, row := range readTLCTable(t) {
		t.Run(row.config, func(t *testing.T) {
			var res Result
			var err error
			switch {
			case strings.HasPrefix(row.config, "TxRing"):
				// TxRing_split*: Split = TRUE; Kinds from the config.
				m := &TxRing{N: row.n, B: row.b, Bug: BugNone, Split: strings.Contains(row.config, "_split")}
				m.NoRS, m.Ctx = cfgKinds(t, row.config)
				res, err = Explore(m.Spec(), 1<<21, (*TxState).String)
			case strings.HasPrefix(row.config, "RxRing"):
				// RxRing_split*: Split = TRUE, Dev = "len_first".
				m := &RxRing{N: row.n, B: row.b, Bug: BugNone, Split: strings.Contains(row.config, "_split")}
				res, err = Explore(m.Spec(), 1<<21, (*RxState).String)
			case strings.HasPrefix(row.config, "Mempool"):
				m := &Mempool{B: row.b, Bug: BugNone}
				res, err = Explore(m.Spec(), 1<<21, (*MempoolState).String)
			default:
				t.Fatalf("unknown config %s", row.config)
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Violation != nil {
				t.Fatalf("property violated in the protocol: %v", res.Violation)
			}
			if res.Distinct != row.distinct || res.Depth != row.depth || res.Generated != row.generated {
				t.Fatalf("explorer: %d distinct states, depth %d, %d generated; TLC: %d, depth %d, %d generated",
					res.Distinct, res.Depth, res.Generated, row.distinct, row.depth, row.generated)
			}
			t.Logf("%s: %d distinct states, depth %d, %d generated (TLC: %d, %d)",
				row.config, res.Distinct, res.Depth, res.Generated, row.distinct, row.depth)
		})
	}
}

// cfgKinds reads the constant Kinds of tla/<config>.cfg: whether it holds
// "nors" and "ctx".
func cfgKinds(t *testing.T, config string) (noRS, ctx bool) {
	t.Helper()
	b, err := os.ReadFile("../tla/" + config + ".cfg")
	if err != nil {
		t.Fatalf("reading the config: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, ok := strings.CutPrefix(strings.TrimSpace(l), "Kinds = "); ok {
			return strings.Contains(k, `"nors"`), strings.Contains(k, `"ctx"`)
		}
	}
	t.Fatalf("%s.cfg: no Kinds", config)
	return false, false
}

// Each broken variant of the specs is caught by the explorer, by one of the
// properties that variant breaks.
func TestExplorerFindsBrokenVariants(t *testing.T) {
	cases := []struct {
		name  string
		run   func() (Result, error)
		props []string
	}{
		{"tx reclaim without DD", func() (Result, error) {
			m := &TxRing{N: 3, B: 3, Bug: BugReclaimWithoutDD}
			return Explore(m.Spec(), 0, (*TxState).String)
		}, []string{"invariant IndexOrder", "invariant DescriptorState", "action property ReuseOnlyAfterDD"}},
		{"tx tail before descriptor", func() (Result, error) {
			m := &TxRing{N: 3, B: 3, Bug: BugTailBeforeDesc}
			return Explore(m.Spec(), 0, (*TxState).String)
		}, []string{"invariant IndexOrder", "action property DeviceTouchesOwnedOnly"}},
		{"tx double post", func() (Result, error) {
			m := &TxRing{N: 3, B: 3, Bug: BugDoublePost}
			return Explore(m.Spec(), 0, (*TxState).String)
		}, []string{"invariant Conservation"}},
		{"tx wrap off by one", func() (Result, error) {
			m := &TxRing{N: 3, B: 3, Bug: BugWrapOffByOne}
			return Explore(m.Spec(), 0, (*TxState).String)
		}, []string{"invariant TypeOK"}},
		{"tx tail between the descriptor's two stores", func() (Result, error) {
			m := &TxRing{N: 3, B: 3, Bug: BugTailBeforeCmdWord, Split: true}
			return Explore(m.Spec(), 0, (*TxState).String)
		}, []string{"invariant FetchedComplete"}},
		{"tx reclaim past the last DD'ed RS descriptor", func() (Result, error) {
			m := &TxRing{N: 3, B: 3, Bug: BugReclaimPastRS, NoRS: true}
			return Explore(m.Spec(), 0, (*TxState).String)
		}, []string{"invariant ReclaimedCovered", "action property ReuseOnlyAfterDD"}},
		{"tx buffer recorded in a context slot", func() (Result, error) {
			m := &TxRing{N: 3, B: 3, Bug: BugCtxBuf, Ctx: true}
			return Explore(m.Spec(), 0, (*TxState).String)
		}, []string{"invariant ContextNoBuf"}},
		{"rx refill owned slot", func() (Result, error) {
			m := &RxRing{N: 3, B: 4, Bug: BugRefillOwnedSlot}
			return Explore(m.Spec(), 0, (*RxState).String)
		}, []string{"invariant DescriptorState", "action property ReuseOnlyAfterDD"}},
		{"rx wrap off by one", func() (Result, error) {
			m := &RxRing{N: 3, B: 4, Bug: BugWrapOffByOne}
			return Explore(m.Spec(), 0, (*RxState).String)
		}, []string{"invariant TypeOK"}},
		{"rx length read before DD", func() (Result, error) {
			m := &RxRing{N: 3, B: 4, Bug: BugLenBeforeDD, Split: true}
			return Explore(m.Spec(), 0, (*RxState).String)
		}, []string{"invariant NoStaleLength"}},
		{"rx device stores status before length", func() (Result, error) {
			m := &RxRing{N: 3, B: 4, Bug: BugNone, Split: true, StatusFirst: true}
			return Explore(m.Spec(), 0, (*RxState).String)
		}, []string{"invariant NoStaleLength"}},
		{"mempool double free", func() (Result, error) {
			m := &Mempool{B: 4, Bug: BugDoubleFree}
			return Explore(m.Spec(), 0, (*MempoolState).String)
		}, []string{"invariant NoDuplicates", "invariant FreeIffNotInUse"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := c.run()
			if err != nil {
				t.Fatal(err)
			}
			if res.Violation == nil {
				t.Fatalf("explorer missed the bug (%d states)", res.Distinct)
			}
			if !slices.Contains(c.props, res.Violation.Property) {
				t.Fatalf("violation of %q, want one of %q:\n%v", res.Violation.Property, c.props, res.Violation)
			}
			t.Logf("%s after %d states, depth %d: %s", res.Violation.Property, res.Distinct, len(res.Violation.Trace), res.Violation.Trace[len(res.Violation.Trace)-1])
		})
	}
}

// The liveness check can fail: without fairness of the device's write-back,
// a posted buffer may stay in the ring forever.
func TestLivenessNeedsDeviceFairness(t *testing.T) {
	m := &TxRing{N: 2, B: 2, Bug: BugNone}
	spec := m.Spec()
	spec.Fair = []string{"WriteTail", "DevFetch", "Reclaim"}
	res, err := Explore(spec, 0, (*TxState).String)
	if err != nil {
		t.Fatal(err)
	}
	if res.Violation == nil || !strings.HasPrefix(res.Violation.Property, "liveness EventuallyReturned") {
		t.Fatalf("want a liveness violation, got %+v", res.Violation)
	}
	rx := &RxRing{N: 2, B: 3, Bug: BugNone}
	rspec := rx.Spec()
	rspec.Fair = []string{"HandUp", "WriteTail", "Refill", "AppFree"}
	res, err = Explore(rspec, 0, (*RxState).String)
	if err != nil {
		t.Fatal(err)
	}
	if res.Violation == nil {
		t.Fatal("RX: want a liveness violation without device fairness")
	}
}

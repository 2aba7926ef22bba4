package models

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// loadTCPConfig reads the constants of tla/<name>.cfg into a TCP model.
func loadTCPConfig(t testing.TB, name string) *TCP {
	t.Helper()
	f, err := os.Open("../tla/" + name + ".cfg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := &TCP{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "CONSTANTS ")
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
		num := func() int {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s.cfg: %s = %s: %v", name, k, v, err)
			}
			return n
		}
		switch k {
		case "M":
			m.M = uint64(num())
		case "ISN":
			for _, x := range strings.Split(strings.Trim(v, "{}"), ",") {
				n, err := strconv.Atoi(strings.TrimSpace(x))
				if err != nil {
					t.Fatalf("%s.cfg: ISN %s", name, v)
				}
				m.ISN = append(m.ISN, uint32(n))
			}
		case "W":
			m.W = uint32(num())
		case "NA":
			m.NA = uint32(num())
		case "NB":
			m.NB = uint32(num())
		case "K":
			m.K = num()
		case "Opens":
			m.Simultaneous = v == "simultaneous"
		case "MaxInject":
			m.MaxInject = num()
		case "Lossy":
			m.Lossy = v == "TRUE"
		case "Bug":
			m.Bug = Bug(v)
		}
	}
	if m.M == 0 || len(m.ISN) == 0 || m.K == 0 || m.Bug == "" {
		t.Fatalf("%s.cfg: incomplete constants %+v", name, m)
	}
	return m
}

// tcpRow is a row of tla/README.md's TCP results table.
type tcpRow struct {
	config                     string
	distinct, depth, generated int
}

// readTCPTable parses the TCP table of tla/README.md:
// | config | M | ISN | W | NA | NB | K | Opens | Inject | Lossy | distinct | depth | generated | TLC result |
func readTCPTable(t testing.TB) []tcpRow {
	t.Helper()
	b, err := os.ReadFile("../tla/README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []tcpRow
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 16 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if !strings.HasPrefix(cells[1], "Tcp") {
			continue
		}
		d, err1 := strconv.Atoi(cells[11])
		h, err2 := strconv.Atoi(cells[12])
		g, err3 := strconv.Atoi(cells[13])
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		rows = append(rows, tcpRow{cells[1], d, h, g})
	}
	if len(rows) < 6 {
		t.Fatalf("found %d TCP rows in tla/README.md, want 6", len(rows))
	}
	return rows
}

// The Go transcription of Tcp.tla reaches exactly TLC's states (distinct,
// depth, generated) on every TCP config, and every property holds.
func TestTCPExplorerMatchesTLC(t *testing.T) {
	for _, row := range readTCPTable(t) {
		t.Run(row.config, func(t *testing.T) {
			if testing.Short() && row.distinct > 50000 {
				t.Skip("large config in -short mode")
			}
			m := loadTCPConfig(t, row.config)
			res, err := Explore(m.Spec(), 1<<21, (*TCPModelState).String)
			if err != nil {
				t.Fatal(err)
			}
			if res.Violation != nil {
				t.Fatalf("property violated in the protocol: %v", res.Violation)
			}
			if res.Distinct != row.distinct || res.Depth != row.depth || res.Generated != row.generated {
				t.Fatalf("explorer: %d distinct, depth %d, %d generated; TLC: %d, %d, %d",
					res.Distinct, res.Depth, res.Generated, row.distinct, row.depth, row.generated)
			}
			t.Logf("%s: %d distinct states, depth %d, %d generated (= TLC)", row.config, res.Distinct, res.Depth, res.Generated)
		})
	}
}

// Each broken variant of Tcp.tla is caught by the explorer on its config,
// by the property TLC reports.
func TestTCPExplorerFindsBrokenVariants(t *testing.T) {
	cases := map[string]string{
		"Tcp_bug_no_wrap_compare":        "liveness Terminates[0]",
		"Tcp_bug_ack_beyond_snd_nxt":     "invariant SndSeqOrder",
		"Tcp_bug_ignore_window":          "invariant RcvBufferBounded",
		"Tcp_bug_window_off_by_one":      "invariant RcvBufferBounded",
		"Tcp_bug_no_time_wait":           "invariant GracefulClose",
		"Tcp_bug_fin_twice":              "invariant RcvNotBeyondSent",
		"Tcp_bug_rst_out_of_window":      "invariant RstInWindow",
		"Tcp_bug_deliver_out_of_order":   "invariant DeliveredInOrder",
		"Tcp_bug_retransmit_wrong_range": "invariant DeliveredInOrder",
	}
	names := make([]string, 0, len(cases))
	for k := range cases {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			m := loadTCPConfig(t, name)
			res, err := Explore(m.Spec(), 1<<21, (*TCPModelState).String)
			if err != nil {
				t.Fatal(err)
			}
			if res.Violation == nil {
				t.Fatalf("explorer missed the bug (%d states)", res.Distinct)
			}
			if res.Violation.Property != cases[name] {
				t.Fatalf("violation of %q, want %q:\n%v", res.Violation.Property, cases[name], res.Violation)
			}
			t.Logf("%s after %d states, %d steps: %s", res.Violation.Property, res.Distinct,
				len(res.Violation.Trace)-1, res.Violation.Trace[len(res.Violation.Trace)-1])
		})
	}
}

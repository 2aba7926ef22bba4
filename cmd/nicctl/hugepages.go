package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/verinic/verinic/vfio/hugepages"
)

func init() {
	register(&command{
		name:    "hugepages",
		summary: "show the 2 MiB hugepages, in total and per NUMA node, or reserve them (root)",
		usage:   "[--reserve N [--node NODE]]",
		run:     runHugepages,
	})
}

func runHugepages(args []string) error {
	fs := newFlagSet("hugepages")
	reserve := fs.Int("reserve", 0, "reserve N 2 MiB pages (in total, or on --node): 0 up to what free memory holds (0 frees them)")
	node := fs.Int("node", 0, "NUMA node for --reserve, one of those listed (default: the system-wide pool)")
	asJSON := fs.Bool("json", false, "print the pools as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q: hugepages takes flags only", fs.Arg(0))
	}
	if set["node"] && !set["reserve"] {
		return usagef("--node %d needs --reserve N: it says where to reserve", *node)
	}
	if set["reserve"] {
		n := -1
		if set["node"] {
			n = *node
		}
		if err := checkReserve(*reserve, n); err != nil {
			return err
		}
		if _, err := hugepages.System.Reserve(n, *reserve); err != nil {
			return err
		}
	}
	pools, err := hugepages.System.Status()
	if err != nil {
		return err
	}
	if *asJSON {
		type pool struct {
			Node  int `json:"node"` // -1: all nodes
			Total int `json:"total"`
			Free  int `json:"free"`
			MiB   int `json:"mib"`
		}
		var v struct {
			PageKiB int    `json:"page_kib"`
			Pools   []pool `json:"pools"`
		}
		v.PageKiB = 2048
		for _, p := range pools {
			v.Pools = append(v.Pools, pool{p.Node, p.Total, p.Free, p.Total * 2})
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tRESERVED\tFREE\tMiB RESERVED")
	for _, p := range pools {
		name := "all nodes"
		if p.Node >= 0 {
			name = fmt.Sprintf("node %d", p.Node)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", name, p.Total, p.Free, p.Total*2)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pools[0].Total == 0 {
		fmt.Println("\nno hugepages reserved: nicctl hugepages --reserve 512 (1 GiB) before using a real NIC")
	}
	return nil
}

// checkReserve checks --reserve count (on node, -1 for all) before anything
// is written: not negative, on a node that exists, and no more new pages
// than free memory holds.
func checkReserve(count, node int) error {
	nodes, err := hugepages.System.Nodes()
	if err != nil {
		return fmt.Errorf("listing NUMA nodes: %w", err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, strconv.Itoa(n))
	}
	have := "no NUMA nodes: leave out --node"
	if len(names) > 0 {
		have = "node " + strings.Join(names, ", ")
	}
	if node != -1 {
		if node < 0 || !slices.Contains(nodes, node) {
			return usagef("--node %d: no such NUMA node (this machine has %s)", node, have)
		}
	}
	pools, err := hugepages.System.Status()
	if err != nil {
		return err
	}
	current := pools[0].Total
	for _, p := range pools[1:] {
		if p.Node == node {
			current = p.Total
		}
	}
	avail, err := memAvailable()
	if err != nil {
		return fmt.Errorf("reading free memory: %w", err)
	}
	most := current + int(avail/(2<<20))
	if count < 0 || count > most {
		why := ""
		if count > most {
			why = fmt.Sprintf(": %d MiB more than the %d MiB of free memory (MemAvailable)", (count-current)*2, avail>>20)
		}
		return usagef("--reserve %d: want 0..%d pages of 2 MiB%s", count, most, why)
	}
	return nil
}

// memAvailable returns the memory the kernel could give (MemAvailable of
// /proc/meminfo), in bytes; tests replace it.
var memAvailable = func() (uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo: %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("/proc/meminfo has no MemAvailable line")
}

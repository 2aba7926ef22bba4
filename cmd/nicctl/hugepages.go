package main

import (
	"fmt"
	"os"
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
	reserve := fs.Int("reserve", -1, "reserve N 2 MiB pages (in total, or on --node)")
	node := fs.Int("node", -1, "NUMA node for --reserve (default: the system-wide pool)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*node >= 0 && *reserve < 0) {
		return errUsage
	}
	if *reserve >= 0 {
		if _, err := hugepages.System.Reserve(*node, *reserve); err != nil {
			return err
		}
	}
	pools, err := hugepages.System.Status()
	if err != nil {
		return err
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

package main

import (
	"fmt"
	"strings"

	"github.com/verinic/verinic/vfio/pci"
)

func init() {
	register(&command{
		name:    "bind",
		summary: "give PCI devices to vfio-pci (refuses a device that is not a network controller, or whose kernel interface is up or has addresses, unless --force)",
		usage:   "[--force] PCI-ADDRESS...",
		run:     runBind,
	})
}

// splitFlags moves boolean flags written after the positional arguments
// (nicctl bind 0000:03:00.0 --force) in front of them, where package flag
// expects them.
func splitFlags(args []string) []string {
	var flags, rest []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
		} else {
			rest = append(rest, a)
		}
	}
	return append(flags, rest...)
}

func runBind(args []string) error {
	fs := newFlagSet("bind")
	force := fs.Bool("force", false, "take the device even if it is not a network controller, or its kernel interface is up or has addresses")
	if err := parseFlags(fs, splitFlags(args)); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("name the PCI address of at least one device (nicctl devices lists them)")
	}
	for _, a := range fs.Args() {
		res, err := pci.System.Bind(a, *force)
		if err != nil {
			return err
		}
		fmt.Println(res)
	}
	return nil
}

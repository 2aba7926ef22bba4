package main

import (
	"fmt"

	"github.com/verinic/verinic/vfio/pci"
)

func init() {
	register(&command{
		name:    "unbind",
		summary: "take PCI devices from vfio-pci and give them back to the driver they had before bind",
		usage:   "PCI-ADDRESS...",
		run:     runUnbind,
	})
}

func runUnbind(args []string) error {
	fs := newFlagSet("unbind")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errUsage
	}
	for _, a := range fs.Args() {
		res, err := pci.System.Unbind(a)
		if err != nil {
			return err
		}
		fmt.Println(res)
	}
	return nil
}

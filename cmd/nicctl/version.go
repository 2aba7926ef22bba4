package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print nicctl's module version, VCS revision and Go version",
		usage:   "",
		run:     func(args []string) error { return runVersion(args, os.Stdout) },
	})
}

func runVersion(args []string, out io.Writer) error {
	fs := newFlagSet("version")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("version takes no arguments")
	}
	path, version := "github.com/verinic/verinic", "(devel)"
	settings := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path != "" {
			path = bi.Main.Path
		}
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
	}
	fmt.Fprintf(out, "nicctl %s %s\n", path, version)
	if rev := settings["vcs.revision"]; rev != "" {
		dirty := ""
		if settings["vcs.modified"] == "true" {
			dirty = ", with uncommitted changes"
		}
		fmt.Fprintf(out, "revision %s (%s %s%s)\n", rev, settings["vcs"], settings["vcs.time"], dirty)
	} else {
		fmt.Fprintln(out, "revision unknown (no VCS information: go build in a git checkout records it; go run and go test do not)")
	}
	fmt.Fprintf(out, "built with %s for %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// Command nicctl operates verinic: it lists and binds NICs, runs the
// driver and the stack on real 82599s (through VFIO) or on simulated ones,
// and records and verifies traces. `nicctl demo` needs no hardware and no
// root. Run `nicctl help` for the subcommands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. Each lives in its own file and registers itself
// from an init function.
type command struct {
	name    string
	summary string // one line for `nicctl help`
	usage   string // argument synopsis
	run     func(args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("nicctl: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// errUsage makes main print the command's usage and exit 2 (after the
// message of an error that wraps it).
var errUsage = errors.New("usage")

// usagef is a usage error with a message: what is wrong with the
// arguments and what to give instead.
func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

// commandLine is the arguments nicctl was started with (for trace headers).
var commandLine []string

func main() {
	commandLine = os.Args[1:]
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fmt.Printf("usage: nicctl %s %s\n\n%s\n", c.name, c.usage, c.summary)
				return 0
			}
		}
		printHelp()
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "nicctl: unknown command %q (see nicctl help)\n", args[0])
		return 2
	}
	if err := c.run(args[1:]); err != nil {
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			if msg := strings.TrimSuffix(err.Error(), ": "+errUsage.Error()); err != errUsage && !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(os.Stderr, "nicctl %s: %s\n", c.name, msg)
			}
			fmt.Fprintf(os.Stderr, "usage: nicctl %s %s\n", c.name, c.usage)
			return 2
		}
		fmt.Fprintf(os.Stderr, "nicctl %s: %v\n", c.name, err)
		return 1
	}
	return 0
}

func printHelp() {
	fmt.Println("nicctl: the verinic 82599 user-space driver and stack tool")
	fmt.Println()
	fmt.Println("usage: nicctl COMMAND [flags] [args]")
	fmt.Println()
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Println()
	fmt.Println("Devices are named by PCI address (0000:03:00.0, through VFIO) or sim (a simulated 82599).")
	fmt.Println("Run `nicctl help COMMAND` for a command's flags.")
}

// newFlagSet returns a flag set for a subcommand that reports errors instead
// of exiting, so that main prints one consistent message.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("nicctl "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

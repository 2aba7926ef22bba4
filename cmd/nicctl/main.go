// Command nicctl operates verinic: it lists and binds NICs, runs the
// driver and the stack on real 82599s (through VFIO) or on simulated ones,
// and records and verifies traces. `nicctl demo` needs no hardware and no
// root. Run `nicctl help` for the subcommands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand. Each lives in its own file and registers itself
// from an init function.
type command struct {
	name    string
	summary string // one line for `nicctl help`
	usage   string // argument synopsis
	run     func(args []string) error
	// flags is the command's flag set, kept by newFlagSet when the command
	// runs (nicctl help COMMAND runs it with -h to print them).
	flags *flag.FlagSet
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

// errInterrupted is the error of a command that stopped early on SIGINT or
// SIGTERM after it printed its summary: nicctl exits 128 + the signal's
// number (130 for SIGINT, 143 for SIGTERM), as a shell reports a command a
// signal killed.
var errInterrupted = errors.New("interrupted")

// interrupted is an errInterrupted that names the signal.
func interrupted(sig os.Signal) error { return &interruptedError{sig} }

type interruptedError struct{ sig os.Signal }

func (e *interruptedError) Error() string        { return "interrupted (" + e.sig.String() + ")" }
func (e *interruptedError) Is(target error) bool { return target == errInterrupted }

// exitCode is the status for an interruption by sig.
func (e *interruptedError) exitCode() int {
	if s, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 130
}

// stopSignals are the signals after which a long-running command stops,
// prints its summary and exits (errInterrupted).
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// commandLine is the arguments nicctl was started with (for trace headers).
var commandLine []string

func main() {
	commandLine = os.Args[1:]
	os.Exit(run(os.Args[1:]))
}

// run runs nicctl with args and returns its exit status: 0 when the command
// did what it was asked, 1 when it failed, 2 for a usage error (unknown
// command or flag, a value out of range), 128+N when signal N stopped it.
func run(args []string) int {
	if len(args) == 0 {
		printHelp(os.Stderr)
		return 2
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) == 1 {
			printHelp(os.Stdout)
			return 0
		}
		c, ok := commands[args[1]]
		if !ok {
			fmt.Fprintf(os.Stderr, "nicctl: unknown command %q (nicctl help lists them)\n", args[1])
			return 2
		}
		printCommandHelp(c, os.Stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "nicctl: unknown command %q (nicctl help lists them)\n", args[0])
		return 2
	}
	err := c.run(args[1:])
	var intr *interruptedError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		printCommandHelp(c, os.Stdout)
		return 0
	case errors.Is(err, errUsage):
		if msg := strings.TrimSuffix(err.Error(), ": "+errUsage.Error()); err != errUsage {
			fmt.Fprintf(os.Stderr, "nicctl %s: %s\n", c.name, msg)
		}
		fmt.Fprintf(os.Stderr, "usage: nicctl %s %s\n(nicctl help %s describes the flags)\n", c.name, c.usage, c.name)
		return 2
	case errors.As(err, &intr):
		fmt.Fprintf(os.Stderr, "nicctl %s: %v\n", c.name, err)
		return intr.exitCode()
	default:
		fmt.Fprintf(os.Stderr, "nicctl %s: %v\n", c.name, err)
		return 1
	}
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "nicctl: the verinic 82599 user-space driver and stack tool")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage: nicctl COMMAND [flags] [args]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Devices are named by PCI address (0000:03:00.0, through VFIO) or sim (a simulated 82599).")
	fmt.Fprintln(w, "Run `nicctl help COMMAND` for a command's flags. Exit status: 0 done, 1 failed, 2 usage error,")
	fmt.Fprintln(w, "130 (SIGINT) or 143 (SIGTERM) stopped early after printing the summary.")
}

// printCommandHelp prints a command's synopsis, summary and flags. It learns
// the flags by running the command with -h, which every command parses
// before it does anything.
func printCommandHelp(c *command, w io.Writer) {
	if c.flags == nil {
		c.run([]string{"-h"})
	}
	fmt.Fprintf(w, "usage: nicctl %s %s\n\n%s\n", c.name, c.usage, c.summary)
	if c.flags == nil {
		return
	}
	n := 0
	c.flags.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nflags:\n")
	c.flags.SetOutput(w)
	c.flags.PrintDefaults()
	c.flags.SetOutput(io.Discard)
}

// newFlagSet returns a flag set for a subcommand that reports errors instead
// of printing them, so that run prints one consistent message, and keeps it
// for nicctl help COMMAND.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("nicctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c, ok := commands[name]; ok {
		c.flags = fs
	}
	return fs
}

// parseFlags parses a command's flags; a bad flag or value is a usage
// error (exit 2), -h or --help asks for the command's help (exit 0).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &usageError{err.Error()}
}

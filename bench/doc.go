// Package bench compares verinic's TCP with other stacks in one
// `go test -bench` run: gVisor's netstack (two stacks joined by in-memory
// channel link endpoints), verinic (two stacks over memlink) and the Linux
// kernel over loopback, with the same three workloads written once against
// net.Conn (tcp_test.go).
//
// It is a separate module so that the main module never depends on gVisor:
// gVisor is a peer to measure against, nothing in verinic imports it. The
// replace directive in go.mod points at the verinic checkout one directory up.
//
// Run it with ./compare.sh (see the "TCP" section of BENCHMARKS.md).
package bench

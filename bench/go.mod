module github.com/verinic/verinic/bench

go 1.26.3

// The verinic checkout this module benchmarks (one directory up).
replace github.com/verinic/verinic => ../

require (
	github.com/verinic/verinic v0.0.0-00010101000000-000000000000
	gvisor.dev/gvisor v0.0.0-20260905035102-160fafc42237 // the proxy's pseudo-version of gVisor's go branch
)

require (
	github.com/aclements/go-moremath v0.0.0-20210112150236-f10218a38794 // indirect
	github.com/google/btree v1.1.2 // indirect
	golang.org/x/exp v0.0.0-20260824195058-e88cd73687aa // indirect
	golang.org/x/perf v0.0.0-20260908200009-22c9c6c9d4da // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/time v0.15.0 // indirect
)

tool golang.org/x/perf/cmd/benchstat

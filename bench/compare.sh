#!/usr/bin/env bash
# compare.sh [COUNT] — runs the TCP comparison benchmarks of this module
# (verinic, gVisor's netstack, the Linux kernel over loopback) COUNT times
# (default 6), interleaved: the test binary is built once and each pass runs
# every benchmark once, so that changes in the machine's load hit all stacks
# alike. Then benchstat puts the stacks side by side, one column per stack.
#
# Environment: BENCH (benchmark regexp, default TCP), BENCHTIME (default 1s),
# TAGS (build tags), OUT (raw output file; default a new temporary file),
# VERINIC_IDLE_SLEEP (the verinic stacks' Config.IdleSleep; default the
# stack's own; -1ns is busy polling). A pass whose benchmarks fail is
# reported and the others go on; benchstat then shows what succeeded.
set -euo pipefail
cd "$(dirname "$0")"
count=${1:-6}
bench=${BENCH:-TCP}
benchtime=${BENCHTIME:-1s}
tmp=$(mktemp -d)
out=${OUT:-$tmp/tcp.txt}
bin=$tmp/bench.test

go test -c -o "$bin" ${TAGS:+-tags "$TAGS"} .
{ uptime; nproc; grep -m1 'model name' /proc/cpuinfo; go version; } | sed 's/^/# /' >"$out"
for i in $(seq "$count"); do
  echo "pass $i/$count" >&2
  "$bin" -test.run '^$' -test.bench "$bench" -test.benchtime "$benchtime" -test.benchmem >>"$out" ||
    echo "pass $i: a benchmark failed (see $out)" >&2
done
echo "# after: $(uptime)" >>"$out"
echo "raw results: $out" >&2

# BenchmarkGVisorTCPBulk-2 -> BenchmarkTCPBulk/stack=gvisor-2, so that
# benchstat can make the stack a column.
cols=$tmp/cols.txt
sed -E 's/^Benchmark(GVisor|Verinic|Kernel)TCP([A-Za-z0-9]+)/BenchmarkTCP\2\/stack=\L\1/' "$out" >"$cols"
order=()
for s in verinic gvisor kernel; do
  grep -q "/stack=$s-" "$cols" && order+=("$s")
done
go tool benchstat -col "/stack@(${order[*]})" "$cols"

#!/usr/bin/env bash
# simspeed.sh [BEFORE [COUNT]] — issue 10's simulator and driver speed
# figures (BENCHMARKS.md, "Simulator and driver speed"): forwarding between
# two simulated 82599s (ixgbe BenchmarkForwardSim, ForwardSimYield), the
# driver's cycles per packet against the in-test stand-in
# (BenchmarkDriverForwardFake), and UDP echo and ping over simulated NICs
# beside the in-memory link (proto/stack). BEFORE (default 0334ad2, main
# before the work) and the working tree are built into test binaries once;
# the "before" tree gets this tree's ixgbe/bench_sim_test.go, so that its
# stepped forwarding reports CPU time per packet too. Each of COUNT passes
# (default 6) runs every benchmark once on both binaries, interleaved, so
# that the machine's load hits both alike; benchstat compares them.
#
# Environment: BENCHTIME (default 1s), OUT (directory for the raw results;
# default a new temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:-0334ad2}
count=${2:-6}
benchtime=${BENCHTIME:-1s}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
src=$(mktemp -d)
git archive "$before" | tar -x -C "$src"
cp ixgbe/bench_sim_test.go "$src/ixgbe/"
for v in before after; do
  dir=.
  [ "$v" = before ] && dir=$src
  (cd "$dir" && go test -c -o "$out/$v-ixgbe.test" ./ixgbe && go test -c -o "$out/$v-stack.test" ./proto/stack)
done
ixbench='ForwardSim/.*/batch=(1|32)$|DriverForwardFake/batch=32$'
stbench='UDPEcho(Sim|Mem)64$|PingRTT(Sim|Mem)$'
for v in before after; do echo "# $v: $(uptime)" >"$out/$v.txt"; done
for i in $(seq "$count"); do
  echo "pass $i/$count" >&2
  for v in before after; do
    (cd ixgbe && "$out/$v-ixgbe.test" -test.run '^$' -test.bench "$ixbench" -test.benchtime "$benchtime") >>"$out/$v.txt"
    (cd proto/stack && "$out/$v-stack.test" -test.run '^$' -test.bench "$stbench" -test.benchtime "$benchtime") >>"$out/$v.txt"
  done
done
# Only the "after" tree has the yielding forwarder.
for i in $(seq "$count"); do
  (cd ixgbe && "$out/after-ixgbe.test" -test.run '^$' -test.bench 'ForwardSimYield' -test.benchtime "$benchtime") >>"$out/after-yield.txt"
done
for v in before after; do echo "# $v end: $(uptime)" >>"$out/$v.txt"; done
benchstat=$(command -v benchstat || echo /root/go/bin/benchstat)
"$benchstat" "$out/before.txt" "$out/after.txt"
"$benchstat" "$out/after-yield.txt"
echo "raw results: $out" >&2

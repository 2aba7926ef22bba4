#!/usr/bin/env bash
# Runs every fuzz target of the repository for a short burst (CI smoke
# fuzzing; the seed corpora also run as plain tests in `go test`).
#
#   .ci/fuzz.sh                 # default: 7 s per target, 14 s differential (~85 s with builds)
#   FUZZTIME=60s .ci/fuzz.sh    # longer bursts, per target
#
# A failure leaves the crashing input in the package's testdata/fuzz/FuzzX/
# directory; commit it once fixed so it stays a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-7s}"
difftime="${FUZZTIME:-14s}"
# Minimizing each new interesting input defaults to 60 s in `go test`, which
# would eat a short burst; 1 s keeps the fuzzer fuzzing.
minimize="${FUZZMINIMIZETIME:-1s}"

run() { # package target duration
	echo "== $2 ($1, $3)"
	timeout 300 go test -run '^$' -fuzz "^$2\$" -fuzztime "$3" -fuzzminimizetime "$minimize" "$1"
}

for target in FuzzParseEthernet FuzzParseARP FuzzParseIPv4 FuzzParseICMPv4 FuzzParseUDP FuzzParseTCP FuzzDecodeFrame; do
	run ./proto/header "$target" "$fuzztime"
done
run ./trace/pcap FuzzReader "$fuzztime"
run ./fuzz FuzzDifferential "$difftime"
echo "fuzz: all targets passed"

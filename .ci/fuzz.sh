#!/usr/bin/env bash
# Runs every fuzz target of the repository for a short burst (CI smoke
# fuzzing; the seed corpora also run as plain tests in `go test`).
#
#   .ci/fuzz.sh                 # default: 7 s per target, 14 s differential (~95 s with builds)
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

# Go's fuzzing coordinator sometimes ends a time-limited run with "context
# deadline exceeded" and a failure status when the time runs out while a
# worker is busy, without having found anything: a real failure always writes
# the input to testdata/fuzz/FuzzX/. Such a run is tried again (twice at
# most); a failure with a new input, or any other failure, fails the script.
files() { # how many files a directory holds (0 when it does not exist)
	if [[ -d "$1" ]]; then find "$1" -type f | wc -l; else echo 0; fi
}

run() { # package target duration
	echo "== $2 ($1, $3)"
	local corpus="$1/testdata/fuzz/$2" log
	log=$(mktemp)
	for attempt in 1 2 3; do
		local before
		before=$(files "$corpus")
		if timeout 300 go test -run '^$' -fuzz "^$2\$" -fuzztime "$3" -fuzzminimizetime "$minimize" "$1" 2>&1 | tee "$log"; then
			rm -f "$log"
			return 0
		fi
		local after
		after=$(files "$corpus")
		if [[ "$after" == "$before" ]] && grep -q "context deadline exceeded" "$log" && ! grep -q "Failing input written" "$log"; then
			echo "fuzz: $2: the fuzzer timed out without finding anything (a Go fuzzing hiccup); attempt $attempt, trying again"
			continue
		fi
		rm -f "$log"
		return 1
	done
	rm -f "$log"
	return 1
}

for target in FuzzParseEthernet FuzzParseARP FuzzParseIPv4 FuzzParseICMPv4 FuzzParseUDP FuzzParseTCP FuzzDecodeFrame; do
	run ./proto/header "$target" "$fuzztime"
done
run ./trace/pcap FuzzReader "$fuzztime"
run ./fuzz FuzzDifferential "$difftime"
# Whole-path TCP: hostile segments into a connection in each state.
run ./fuzz FuzzTCPInput "$fuzztime"
echo "fuzz: all targets passed"

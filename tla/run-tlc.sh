#!/usr/bin/env bash
# Runs TLC on every model config (*.cfg) and trace spec config in this
# directory when TLA2TOOLS_JAR names the TLA+ tools jar; otherwise says that
# it skipped TLC and exits 0.
#
#   TLA2TOOLS_JAR=/path/to/tla2tools.jar tla/run-tlc.sh [CONFIG...]
#
# A config is checked against the module named by the part of its name
# before the first "_" (TxRing_N4B4.cfg -> TxRing.tla, Tcp_wrap.cfg -> Tcp.tla). Configs whose name
# contains "_bug_" model a deliberately broken variant, and configs named
# "*Trace_reject*" feed a trace that must be refused: for those, TLC must
# report a violation (exit code 12 or 13; 11, deadlock, for a trace spec:
# no action explains the next event). Every other config must pass
# (exit 0). For each config one line is printed:
#
#   RESULT <config> <ok|violation|FAIL> distinct=<n> depth=<d> exit=<code> generated=<g>
#
# and the script exits 1 if any config had an unexpected outcome.
set -u
cd "$(dirname "$0")"
if [ -z "${TLA2TOOLS_JAR:-}" ]; then
	echo "skipped TLC: TLA2TOOLS_JAR is not set (obtain tla2tools.jar from the TLA+ project's releases)"
	exit 0
fi
if [ ! -f "$TLA2TOOLS_JAR" ]; then
	echo "run-tlc.sh: TLA2TOOLS_JAR=$TLA2TOOLS_JAR: no such file" >&2
	exit 2
fi
JAVA=${JAVA:-java}
WORKERS=${TLC_WORKERS:-2}
meta=$(mktemp -d)
trap 'rm -rf "$meta"' EXIT
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
	configs=(*.cfg)
fi
bad=0
for cfg in "${configs[@]}"; do
	cfg=${cfg%.cfg}
	module=${cfg%%_*}
	workers=$WORKERS
	deadlock=-deadlock # the specs' own configs: no deadlock check needed
	case $module in
	Tcp)
		# One worker: with two, TLC's BFS is not strictly level by level and
		# the depth it prints varies by one from run to run.
		workers=1
		;;
	*Trace)
		# Trace specs accept a trace iff there is no deadlock.
		workers=1
		deadlock=
		;;
	esac
	log="$meta/$cfg.log"
	"$JAVA" -XX:+UseParallelGC -cp "$TLA2TOOLS_JAR" tlc2.TLC -noGenerateSpecTE $deadlock -workers "$workers" \
		-metadir "$meta/$cfg" -config "$cfg.cfg" "$module.tla" >"$log" 2>&1
	code=$?
	distinct=$(sed -n 's/^\([0-9]*\) states generated, \([0-9]*\) distinct states found.*/\2/p' "$log" | tail -1)
	generated=$(sed -n 's/^\([0-9]*\) states generated, \([0-9]*\) distinct states found.*/\1/p' "$log" | tail -1)
	depth=$(sed -n 's/^The depth of the complete state graph search is \([0-9]*\).*/\1/p' "$log" | tail -1)
	expect=ok
	case $cfg in *_bug_* | *Trace_reject*) expect=violation ;; esac
	case $code in
	0) got=ok ;;
	11 | 12 | 13) got=violation ;;
	*) got=error ;;
	esac
	result=$got
	if [ "$got" != "$expect" ]; then
		result=FAIL
		bad=1
		echo "--- $cfg: expected $expect, TLC exit $code; log:" >&2
		tail -30 "$log" >&2
	fi
	if [ "$got" = violation ]; then
		grep -m1 -E 'is violated|Error:' "$log" | sed "s/^/      $cfg: /"
	fi
	echo "RESULT $cfg $result distinct=${distinct:-?} depth=${depth:-?} exit=$code generated=${generated:-?}"
done
exit $bad

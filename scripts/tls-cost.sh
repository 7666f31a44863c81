#!/bin/bash
# tls-cost.sh [RUNS]   the 1 GiB shuffle through remote fetches (2 node
# services, every block fetched over gRPC) with mutual TLS (the default) and
# with --insecure, alternately, RUNS times each (default 5); prints each
# run's total seconds and MB/s, then the medians (docs/measurements.md,
# "What TLS costs").
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
make --no-print-directory build >/dev/null
run() { # run MODE I [FLAGS...]
	local mode=$1 i=$2
	shift 2
	bin/shoal bench shuffle --nodes 2 --remote-only --records 10737418 --record-bytes 100 --json "$@" |
		sed -n 's/.*"total_seconds":\([0-9.]*\).*"mb_per_second":\([0-9.]*\).*/\1 \2/p' |
		{ read -r s mbps; echo "$mode $i $s $mbps"; }
}
out=$(for i in $(seq "$runs"); do
	run tls "$i"
	run insecure "$i" --insecure
done | tee /dev/stderr)
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for m in tls insecure; do
	echo "$m median: $(grep "^$m " <<<"$out" | cut -d' ' -f3 | median) s, $(grep "^$m " <<<"$out" | cut -d' ' -f4 | median) MB/s"
done

#!/bin/bash
# ui-cost.sh [RUNS]   make demo's PageRank (1M edges, 20 iterations, a worker
# killed at 4 s) with the live UI on (the default, 127.0.0.1:4040) and off,
# alternately, RUNS times each (default 5); prints the job's own time of
# every run (docs/ui.md, "What the UI costs").
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
make --no-print-directory build >/dev/null
mkdir -p demo results/tmp
test -s demo/graph.txt || bin/shoal gen graph --records 1000000 --output demo/graph.txt
run() { # run MODE I UI-ADDR
	local out=results/tmp/ui-cost-$1-$2
	rm -rf "$out" "$out.jsonl"
	bin/shoal run pagerank --input demo/graph.txt --output "$out" --iterations 20 \
		--event-log "$out.jsonl" --kill-worker-after 4s --ui-addr "$3" >"$out.log" 2>&1
	echo "$1 $2 $(grep -o 'done in [0-9.]*s, output' "$out.log" | tail -1 | cut -d' ' -f3 | tr -d ,)"
}
for i in $(seq "$runs"); do
	run on "$i" 127.0.0.1:4040
	run off "$i" off
done

#!/bin/bash
# tls-cluster-cost.sh [RUNS]   make demo's PageRank (20 iterations) in
# cluster mode on three `shoal node` processes on loopback, each starting
# two workers: once against three nodes with mutual TLS (certificates of a
# fresh CA from `shoal certs`), once against three nodes without
# (`--insecure` on the driver), alternately, RUNS times each (default 5);
# prints the job's own time ("done in") of every run and the medians
# (docs/measurements.md, "What TLS costs"). The nodes and their files live
# in a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
make --no-print-directory build >/dev/null
shoal=$PWD/bin/shoal
mkdir -p demo
test -s demo/graph.txt || "$shoal" gen graph --records 1000000 --output demo/graph.txt
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
"$shoal" certs init --dir "$tmp/ca" >/dev/null
"$shoal" certs client --ca "$tmp/ca" --name driver --out "$tmp/driver" >/dev/null
# node MODE I PORT: a node service on 127.0.0.1:PORT, with a certificate
# in mode tls; its address file says when it serves.
node() {
	local mode=$1 i=$2 port=$3 flags=()
	if [ "$mode" = tls ]; then
		"$shoal" certs node --ca "$tmp/ca" --name "n$i" --host 127.0.0.1,localhost --out "$tmp/$mode-n$i-tls" >/dev/null
		flags=(--tls-dir "$tmp/$mode-n$i-tls")
	fi
	mkdir -p "$tmp/$mode-n$i"
	"$shoal" node --dir "$tmp/$mode-n$i" --listen "127.0.0.1:$port" --workers 2 --name "$mode-n$i" "${flags[@]}" \
		>"$tmp/$mode-n$i.out" 2>"$tmp/$mode-n$i.log" &
	pids+=($!)
}
for i in 1 2 3; do
	node tls "$i" $((7300 + i))
	node insecure "$i" $((7400 + i))
done
# The nodes print a line once they serve.
for f in "$tmp"/*-n?.out; do
	for _ in $(seq 100); do [ -s "$f" ] && break; sleep 0.1; done
	[ -s "$f" ] || { echo "a node did not start: $(cat "${f%.out}.log")" >&2; exit 1; }
done
run() { # run MODE I FLAGS...
	local mode=$1 i=$2 out=$tmp/ranks-$1-$2
	shift 2
	"$shoal" run pagerank --input "$PWD/demo/graph.txt" --output "$out" --iterations 20 --ui-addr off "$@" >"$tmp/run.log" 2>&1 ||
		{ cat "$tmp/run.log" >&2; exit 1; }
	echo "$mode $i $(grep -o 'done in [0-9.]*s' "$tmp/run.log" | tail -1 | cut -d' ' -f3 | tr -d s)"
	rm -rf "$out"
}
out=$(for i in $(seq "$runs"); do
	run tls "$i" --master shoal://127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303 --tls-dir "$tmp/driver" --tls-server-name localhost
	run insecure "$i" --master shoal://127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403 --insecure
done | tee /dev/stderr)
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for m in tls insecure; do
	echo "$m median: $(grep "^$m " <<<"$out" | cut -d' ' -f3 | median) s"
done

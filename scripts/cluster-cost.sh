#!/bin/bash
# cluster-cost.sh [RUNS]   PageRank of make demo's graph on the three node
# containers of deploy/compose.yaml against three local node services,
# alternately, RUNS times each (default 3); prints the wall clock and the
# job's own time of every run (docs/measurements.md, "The cost of a
# cluster"). Builds what it needs (make build image image-minio
# deploy-secret), brings the Compose project up, and down (with its
# volumes) at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
make --no-print-directory build image image-minio deploy-secret >/dev/null
if docker compose version >/dev/null 2>&1; then dc=(docker compose); else dc=(docker-compose); fi
dc() { "${dc[@]}" -f deploy/compose.yaml "$@"; }
trap 'dc down -v >/dev/null 2>&1 || true' EXIT
dc up -d >/dev/null 2>&1
mkdir -p demo results/tmp
test -s demo/graph.txt || bin/shoal gen graph --records 1000000 --output demo/graph.txt
dc run --rm --no-deps -T driver s3 mb s3://shoal >/dev/null 2>&1
dc run --rm --no-deps -T driver s3 cp - s3://shoal/graph.txt <demo/graph.txt >/dev/null 2>&1
stamp=$(date +%s)
elapsed() { local s e; s=$(date +%s.%N); "$@" >"$log" 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
for i in $(seq "$runs"); do
	log=results/tmp/cost-cluster-$i.log
	w=$(elapsed dc run --rm --no-deps -T driver run pagerank --input s3://shoal/graph.txt \
		--output "s3://shoal/ranks-$stamp-$i" --iterations 20 --ui-addr off)
	echo "cluster $i wall ${w}s job $(grep -o 'done in [0-9.]*s, output' "$log" | tail -1 | cut -d' ' -f3 | tr -d ,)"
	rm -rf "results/tmp/ranks-local-$i"
	log=results/tmp/cost-local-$i.log
	w=$(elapsed bin/shoal run pagerank --input demo/graph.txt --output "results/tmp/ranks-local-$i" \
		--iterations 20 --nodes 3 --workers-per-node 2 --ui-addr off)
	echo "local   $i wall ${w}s job $(grep -o 'done in [0-9.]*s, output' "$log" | tail -1 | cut -d' ' -f3 | tr -d ,)"
done

#!/bin/bash
# genproto.sh .        regenerate the protobuf code in place
# genproto.sh --check  regenerate into a temporary tree and fail on any difference
set -euo pipefail
cd "$(dirname "$0")/.."
# Each proto is compiled with its own directory first on the include path
# and every other proto directory after it, so that one may import another
# by file name (compute.proto imports "shuffle.proto").
protos=(shuffleservice/shufflepb/shuffle.proto compute/computepb/compute.proto client/clientpb/report.proto)
includes=()
for p in "${protos[@]}"; do includes+=(-I "$(dirname "$p")"); done
out=.
if [ "${1:-}" = "--check" ]; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi
for p in "${protos[@]}"; do
	d=$(dirname "$p")
	mkdir -p "$out/$d"
	protoc -I "$d" "${includes[@]}" --go_out="$out/$d" --go_opt=paths=source_relative \
		--go-grpc_out="$out/$d" --go-grpc_opt=paths=source_relative "$p"
done
if [ "$out" != . ]; then
	status=0
	for p in "${protos[@]}"; do
		d=$(dirname "$p")
		for f in "$out/$d"/*.go; do
			if ! diff -u "$d/$(basename "$f")" "$f"; then status=1; fi
		done
	done
	[ $status = 0 ] && echo "generated code is up to date" || echo "generated code differs: run make proto and commit" >&2
	exit $status
fi

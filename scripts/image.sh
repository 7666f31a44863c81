#!/bin/bash
# image.sh shoal           build shoal:dev: ./cmd/shoal, static, FROM scratch (make image)
# image.sh minio BINARY    build shoal-minio:dev around the MinIO BINARY (make image-minio)
#
# An image FROM scratch needs nothing pulled and no registry: the build
# context is one tar archive, rootfs.tar, made here with exact owners and
# modes (the legacy builder's COPY keeps neither on a directory), and the
# Dockerfile in deploy/ adds it. Every image holds its binary, /tmp (1777)
# and a data directory owned by 65532:65532 with mode 0770 (its group may
# write: docs/cluster.md, "Who the containers run as").
#
# The image is labelled with the binary's SHA-256 and with the digest of the
# whole context (rootfs.tar and the Dockerfile); when the tag already names
# an image with the same context digest, nothing is built, so a test that
# asks for the image again (internal/dockertest.BuildImage) costs only the
# (cached) go build.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
kind=${1:-}

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/root
mkdir -p "$root/tmp"
chmod 1777 "$root/tmp"

case "$kind" in
shoal)
	tag=shoal:dev
	dockerfile=deploy/Dockerfile
	bin=shoal
	data=var/lib/shoal
	CGO_ENABLED=0 GOOS=linux "$GO" build -trimpath -ldflags='-s -w' -o "$root/$bin" ./cmd/shoal
	;;
minio)
	src=${2:?usage: image.sh minio BINARY}
	tag=shoal-minio:dev
	dockerfile=deploy/minio.Dockerfile
	bin=minio
	data=data
	# A scratch image has no dynamic loader: the binary must be static.
	info=$("$GO" version -m "$src")
	if ! grep -q 'CGO_ENABLED=0' <<<"$info" || ! grep -q 'GOOS=linux' <<<"$info"; then
		echo "image.sh: $src is not a static Linux binary (build it with CGO_ENABLED=0 GOOS=linux; make image-minio does)" >&2
		exit 1
	fi
	cp "$src" "$root/$bin"
	;;
*)
	echo "usage: image.sh shoal | image.sh minio BINARY" >&2
	exit 2
	;;
esac

mkdir -p "$root/$data"
chmod 0755 "$root/$bin"
chmod 0770 "$root/$data"
# The parents of the data directory belong to root.
parents=()
p=$(dirname "$data")
while [ "$p" != . ]; do
	parents=("$p" "${parents[@]}")
	p=$(dirname "$p")
done
tarflags=(--numeric-owner --mtime=@0 --no-recursion --format=gnu)
(cd "$root" && tar "${tarflags[@]}" --owner=0 --group=0 -cf "$ctx/rootfs.tar" "$bin" tmp "${parents[@]}")
(cd "$root" && tar "${tarflags[@]}" --owner=65532 --group=65532 -rf "$ctx/rootfs.tar" "$data")
cp "$dockerfile" "$ctx/Dockerfile"

binsum=$(sha256sum "$root/$bin" | cut -d' ' -f1)
ctxsum=$(cat "$ctx/rootfs.tar" "$ctx/Dockerfile" | sha256sum | cut -d' ' -f1)
have=$(docker image inspect --format '{{index .Config.Labels "shoal.context-sha256"}}' "$tag" 2>/dev/null || true)
previous=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
if [ "$have" = "$ctxsum" ]; then
	echo "$tag is up to date (binary sha256 $binsum)"
	exit 0
fi
# The legacy builder (no BuildKit) is enough for FROM scratch and is what
# every Docker Engine has; its output (a deprecation notice, the image ID)
# is shown only when the build fails.
if ! out=$(DOCKER_BUILDKIT=0 docker build --quiet \
	--label "shoal.binary-sha256=$binsum" --label "shoal.context-sha256=$ctxsum" \
	--tag "$tag" "$ctx" 2>&1); then
	echo "$out" >&2
	echo "image.sh: docker build of $tag failed" >&2
	exit 1
fi
# The image the tag named before is left without a name: remove it, unless
# a container still uses it.
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect --format '{{.Id}}' "$tag")" ]; then
	docker image rm "$previous" >/dev/null 2>&1 || true
fi
echo "built $tag (binary sha256 $binsum)"

#!/bin/bash
# deploy-secret.sh DIR   write DIR/secret/cluster-secret, the cluster's
# certificates and DIR/.env (make deploy-secret: DIR=deploy)
#
# The certificates (docs/security.md), made with `shoal certs` ($SHOAL, or
# bin/shoal: make deploy-secret builds it):
#   DIR/secret/ca/          the cluster's CA: ca.crt, ca.key (0600); never
#                           mounted in a container
#   DIR/secret/tls-h1/ ...  each Compose node's identity (ca.crt, tls.crt,
#   DIR/secret/tls-h3/      tls.key): valid for its host name, h1 to h3
#   DIR/secret/tls-driver/  the driver's (a client certificate)
# The identity directories (0700, their keys 0600) belong to the user the
# containers run as, as the secret does.
#
# DIR/secret/cluster-secret (mode 0600, in a 0700 directory) is the cluster
# secret that deploy/compose.yaml gives the node services and the driver as
# a Compose secret. DIR/.env is what Compose reads beside compose.yaml: the
# project name, the S3 credentials of the MinIO service (a random secret
# key) and SHOAL_UID, the user the containers run as.
#
# Compose bind-mounts a secret file with its owner and mode (it cannot
# change them outside Swarm), so the containers must run as the file's
# owner to read a 0600 file: SHOAL_UID is your own uid, and when you are
# root (uid 0, which a container must not run as) the file is given to
# 65532, the image's user, and SHOAL_UID is 65532 (docs/cluster.md, "Who
# the containers run as").
#
# Everything is git-ignored. Existing files are kept, never overwritten:
# remove them to make new ones (and recreate the containers); to rotate a
# certificate, remove its directory and run the script again (the CA is
# kept, so the others stay valid).
set -euo pipefail
dir=${1:?usage: deploy-secret.sh DIR}
umask 077
secret=$dir/secret/cluster-secret
env=$dir/.env

# 32 random bytes, hex: a secret with no newline or quote to mangle.
random() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

uid=$(id -u)
owner=$uid
if [ "$uid" = 0 ]; then
	owner=65532
fi

mkdir -p "$dir/secret"
chmod 0700 "$dir/secret"
if [ -e "$secret" ]; then
	echo "$secret exists: kept"
else
	tmp=$(mktemp "$dir/secret/.cluster-secret.XXXXXX")
	random >"$tmp"
	chmod 0600 "$tmp"
	if [ "$owner" != "$uid" ]; then
		chown "$owner:$owner" "$tmp"
	fi
	mv "$tmp" "$secret"
	echo "wrote $secret (mode 0600, owner $owner)"
fi

if [ -e "$env" ]; then
	echo "$env exists: kept"
else
	tmp=$(mktemp "$dir/.env.XXXXXX")
	cat >"$tmp" <<EOF
# Written by make deploy-secret for deploy/compose.yaml; git-ignored.
COMPOSE_PROJECT_NAME=shoal
# The user the node and driver containers run as: the owner of
# secret/cluster-secret (a bind-mounted secret keeps its owner and mode).
SHOAL_UID=$owner
# The root credentials of the MinIO service, which the driver uses as its
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
SHOAL_S3_ACCESS_KEY=shoal
SHOAL_S3_SECRET_KEY=$(random)
EOF
	chmod 0600 "$tmp"
	mv "$tmp" "$env"
	echo "wrote $env (mode 0600)"
fi

shoal=${SHOAL:-$(dirname "$0")/../bin/shoal}
if [ ! -x "$shoal" ]; then
	echo "deploy-secret.sh: $shoal is not built: run make build (or give SHOAL=PATH)" >&2
	exit 1
fi
ca=$dir/secret/ca
if [ -e "$ca/ca.crt" ]; then
	echo "$ca exists: kept"
else
	"$shoal" certs init --dir "$ca" --name shoal-compose-ca
fi
# issue DIR ARGS...: a certificate in DIR unless it exists, owned by the
# containers' user.
issue() {
	local out=$1
	shift
	if [ -e "$out/tls.crt" ]; then
		echo "$out exists: kept"
		return
	fi
	"$shoal" certs "$@" --ca "$ca" --out "$out"
	if [ "$owner" != "$uid" ]; then
		chown -R "$owner:$owner" "$out"
	fi
}
for h in h1 h2 h3; do
	issue "$dir/secret/tls-$h" node --name "$h" --host "$h"
done
issue "$dir/secret/tls-driver" client --name driver

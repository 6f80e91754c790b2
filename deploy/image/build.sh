#!/usr/bin/env bash
# Builds the production image from the Dockerfile: `make image` calls it.
#
#   deploy/image/build.sh [TAG]          (default civil-words:<the project's version>)
#
# With podman (preferred when both are installed) or docker, whichever this machine has
# (ENGINE=docker to choose). With podman: the image is built in Docker's format (OCI drops
# HEALTHCHECK), never pulling (base.sh has put the base image in the store: the real one where
# it can be pulled, a stand-in where not), with the host's pip configuration mounted read-only
# (pip_mounts.py). Docker builds with the public indexes, as on any laptop.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)
tag=${1:-civil-words:$version}
engine=${ENGINE:-$(command -v podman || command -v docker || true)}
[[ -n "$engine" ]] || {
    echo "build.sh: neither podman nor docker is installed (apt-get install podman)" >&2
    exit 1
}
base=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile | head -n1)
python=${PYTHON:-python3}

args=(--tag "$tag")
if [[ "$(basename "$engine")" == podman ]]; then
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/deploy/image/containers.conf}
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mapfile -t pip_args < <("$python" deploy/image/pip_mounts.py "$tmp")
    args+=(--format docker --pull=never --layers "${pip_args[@]}")
fi

deploy/image/base.sh "$engine" "$base"
start=$(date +%s.%N)
"$engine" build "${args[@]}" .
end=$(date +%s.%N)
size=$("$engine" image inspect --format '{{.Size}}' "$tag")
awk -v tag="$tag" -v engine="$(basename "$engine")" -v s="$start" -v e="$end" -v size="$size" \
    'BEGIN { printf "build.sh: %s built with %s in %.1f s, %d bytes (%.0f MB)\n", tag, engine, e - s, size, size / 1e6 }'

#!/usr/bin/env bash
# Makes sure the Dockerfile's base image is in the container engine's store.
#
#   deploy/image/base.sh ENGINE IMAGE      (the Makefile's `image` target calls it)
#
# Already there: nothing to do. Pullable (a laptop, a CI with Docker Hub): pulled, so the real
# image is used. Neither (our build machines reach no container registry): a stand-in with the
# same name is made from Debian bookworm's own packages (python3, its venv module,
# ca-certificates) with mmdebstrap, fed this machine's apt sources on standard input, and
# imported with podman. The stand-in runs the same `python -m venv`, pip and `python` the
# Dockerfile uses; it is labelled as a stand-in so that it is never mistaken for the real one.
set -euo pipefail

engine=${1:?usage: base.sh ENGINE IMAGE}
image=${2:?usage: base.sh ENGINE IMAGE}

# podman names an imported image as given; Dockerfile short names mean Docker Hub's library.
case "$image" in
    */*) qualified=$image ;;
    *) qualified=docker.io/library/$image ;;
esac

if "$engine" image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi
if "$engine" pull "$image" >/dev/null 2>&1; then
    echo "base.sh: pulled $image"
    exit 0
fi
if [[ "$(basename "$engine")" != podman ]]; then
    echo "base.sh: cannot pull $image, and the stand-in is made with podman only" >&2
    exit 1
fi
command -v mmdebstrap >/dev/null || {
    echo "base.sh: $image cannot be pulled and mmdebstrap is missing (apt-get install mmdebstrap)" >&2
    exit 1
}

# This machine's apt sources, deb822 (.sources) or one-line (.list), the same mirrors and
# snapshots apt itself uses here.
sources=$(
    shopt -s nullglob
    files=(/etc/apt/sources.list.d/*.sources)
    if ((${#files[@]})); then
        cat "${files[@]}"
    else
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    fi
)
[[ -n "$sources" ]] || { echo "base.sh: no apt sources found under /etc/apt" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "base.sh: $image cannot be pulled; building a stand-in from Debian bookworm packages"
# minbase plus Python; no documentation, manuals or translations (as in the slim images).
mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    bookworm "$tmp/rootfs.tar" - <<<"$sources"

"$engine" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --change "LABEL org.civil-words.stand-in=debian-bookworm-python3" \
    "$tmp/rootfs.tar" "$qualified" >/dev/null
echo "base.sh: imported the stand-in as $qualified"

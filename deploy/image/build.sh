#!/usr/bin/env bash
# `make image` / `make image-gpu`: build an image as NAME:<version> and NAME:latest.
#   deploy/image/build.sh [DOCKERFILE [NAME [build flags...]]]     (defaults: Dockerfile rnnserve)
# With a Docker engine: docker build. Without one: buildah (Debian's package; root, chroot isolation) with the
# Dockerfile's base image replaced by a stand-in made once by deploy/image/base.sh, since no base image can be
# pulled here. Buildah's storage driver is its configured default (overlay where the kernel allows it, as here);
# STORAGE_DRIVER=vfs chooses vfs.
set -euo pipefail
cd "$(dirname "$0")/../.."
DOCKERFILE="${1:-Dockerfile}"
NAME="${2:-rnnserve}"
shift $(($# > 2 ? 2 : $#))
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
REVISION=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- 2>/dev/null || REVISION="$REVISION-dirty"
SOURCE=$(git remote get-url origin 2>/dev/null || echo unknown)
args=(--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "SOURCE=$SOURCE" -f "$DOCKERFILE" "$@")
start=$SECONDS

if docker info >/dev/null 2>&1; then
    docker build "${args[@]}" -t "$NAME:$VERSION" -t "$NAME:latest" .
    echo "built $NAME:$VERSION with docker in $((SECONDS - start)) s:" \
        "$(docker image inspect -f '{{.Size}}' "$NAME:$VERSION") bytes"
    exit 0
fi
if ! command -v buildah >/dev/null; then
    echo "neither a Docker engine nor buildah: apt-get install buildah debootstrap (make .venv/.dev tries)" >&2
    exit 2
fi
if [ "$(id -u)" != 0 ]; then
    echo "buildah builds here as root (chroot isolation); run make image as root, or with a Docker engine" >&2
    exit 2
fi
bh() { buildah ${STORAGE_DRIVER:+--storage-driver "$STORAGE_DRIVER"} "$@"; }
BASE=$(deploy/image/base.sh)
previous=$(bh images --quiet --no-trunc "localhost/$NAME:$VERSION" 2>/dev/null || true)
# --from replaces the Dockerfile's FROM (python:3.11-slim, or the CUDA image of Dockerfile.gpu) with the stand-in;
# --format docker keeps the HEALTHCHECK, which the OCI image format has no field for.
bh build --quiet --format docker --isolation chroot --network host --pull=never --from "$BASE" "${args[@]}" \
    -t "localhost/$NAME:$VERSION" -t "localhost/$NAME:latest" . >/dev/null
if [ -n "$previous" ] && [ "$previous" != "$(bh images --quiet --no-trunc "localhost/$NAME:$VERSION")" ]; then
    bh rmi "$previous" >/dev/null 2>&1 || true  # the last build's image, now untagged (unless a container uses it)
fi
echo "built localhost/$NAME:$VERSION with buildah in $((SECONDS - start)) s on the stand-in base $BASE:" \
    "$(bh images --format '{{.Size}}' "localhost/$NAME:$VERSION" | head -1)"

#!/usr/bin/env bash
# The stand-in for python:3.11-slim where no base image can be pulled (no Docker engine, no registry): Debian
# bookworm minbase with Debian's Python 3.11, made with debootstrap and committed into buildah's storage once.
#   deploy/image/base.sh [IMAGE]      (root; IMAGE defaults to localhost/rnnserve-base:py311-bookworm)
# Three adjustments make it stand in for the official image: `python` and `pip` on the PATH, no EXTERNALLY-MANAGED
# marker (pip installs into the system Python, as it does in python:3.11-slim), and this machine's CA bundle (pip
# reaches PyPI through whatever TLS proxy the build machine trusts). Docs, man pages and apt lists are left out, as
# in Debian's -slim images. It is not the official image: its Python is Debian's 3.11.2, not python.org's build.
set -euo pipefail
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}" BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
IMAGE="${1:-localhost/rnnserve-base:py311-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${RNNSERVE_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rnnserve-image}"

if buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
    echo "stand-in base $IMAGE: already made"
    exit 0
fi
mkdir -p "$CACHE"
rootfs="$CACHE/rootfs.$$"
trap 'rm -rf "$rootfs"' EXIT
start=$SECONDS
# The dpkg excludes of Debian's -slim images, in place before any package is unpacked.
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-pip,ca-certificates \
    bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
echo "debootstrap: $((SECONDS - start)) s"
ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/python"
ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/python3"
ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log

ctr=$(buildah from scratch)
cp -a "$rootfs/." "$(buildah mount "$ctr")/"
buildah umount "$ctr" >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3 --label org.opencontainers.image.description="stand-in for python:3.11-slim (debootstrap)" "$ctr"
buildah commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
echo "stand-in base $IMAGE: made in $((SECONDS - start)) s"

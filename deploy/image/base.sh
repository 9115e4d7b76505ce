#!/usr/bin/env bash
# The stand-in for python:3.11-slim where no base image can be pulled (no Docker engine, no registry): Debian
# bookworm minbase with Debian's Python 3.11, made with debootstrap and committed into buildah's storage once.
#   deploy/image/base.sh               (root; prints the image's name: localhost/rnnserve-base:py311-bookworm-<hash>,
#                                       the hash of this script, so that a change to it makes a new base)
# Three adjustments make it stand in for the official image: `python` and `pip` on the PATH, no EXTERNALLY-MANAGED
# marker (pip installs into the system Python, as it does in python:3.11-slim), and this machine's CA bundle (pip
# reaches PyPI through whatever TLS proxy the build machine trusts). Docs, man pages and apt lists are left out, as
# in Debian's -slim images, whose apt configuration (docker-clean: no .deb files kept) it also takes. It is not the
# official image: its Python is Debian's 3.11.2, not python.org's build.
set -euo pipefail
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
bh() { buildah ${STORAGE_DRIVER:+--storage-driver "$STORAGE_DRIVER"} "$@"; }
IMAGE="localhost/rnnserve-base:py311-bookworm-$(sha256sum "$0" | cut -c1-12)"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${RNNSERVE_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rnnserve-image}"

if bh inspect --type image "$IMAGE" >/dev/null 2>&1; then
    echo "$IMAGE"
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
echo "debootstrap: $((SECONDS - start)) s" >&2
ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/python"
ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/python3"
ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log

ctr=$(bh from scratch)
cp -a "$rootfs/." "$(bh mount "$ctr")/"
bh umount "$ctr" >/dev/null
bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3 --label org.opencontainers.image.description="stand-in for python:3.11-slim (debootstrap)" "$ctr"
bh commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
echo "stand-in base $IMAGE: made in $((SECONDS - start)) s" >&2
for old in $(bh images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/rnnserve-base:' | grep -vx "$IMAGE"); do
    bh rmi "$old" >/dev/null 2>&1 || true  # an earlier version of this script's base (unless an image still uses it)
done
echo "$IMAGE"

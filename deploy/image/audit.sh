#!/usr/bin/env bash
# `make image-audit`: pip-audit on the Python packages inside the built image (not the project's virtual environment).
#   deploy/image/audit.sh [IMAGE]      (default rnnserve:<version>; pip-audit goes into a throwaway venv in the cache)
# pip-audit asks PyPI's JSON API (pypi.org/pypi/<name>/<version>/json) for each package's known vulnerabilities. A
# package it could not ask about is no result: the audit fails then, rather than print "No known vulnerabilities".
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE="${1:-rnnserve:$VERSION}"
CACHE="${RNNSERVE_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rnnserve-image}"
venv="$CACHE/pip-audit-venv"
[ -x "$venv/bin/pip-audit" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q pip-audit >/dev/null 2>&1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
verdict() {  # rnnserve itself is not on PyPI; any other package skipped means the audit did not happen
    skipped=$(grep "could not be audited" "$out" | grep -v "^rnnserve " | wc -l)
    if [ "$skipped" -gt 0 ]; then
        echo "pip-audit: NOT AUDITED: $skipped packages could not be looked up (is pypi.org's JSON API reachable?)" >&2
        exit 1
    fi
}
echo "$("$venv/bin/pip-audit" --version) on $IMAGE"
if docker info >/dev/null 2>&1; then
    reqs=$(mktemp)
    trap 'rm -f "$reqs" "$out"' EXIT
    docker run --rm --entrypoint python "$IMAGE" -m pip list --format=freeze --exclude rnnserve >"$reqs"
    status=0
    "$venv/bin/pip-audit" --disable-pip --no-deps -r "$reqs" 2>&1 | tee "$out" || status=$?
    verdict
    exit "$status"
fi
bh() { buildah ${STORAGE_DRIVER:+--storage-driver "$STORAGE_DRIVER"} "$@"; }
ctr=$(bh from --pull=never "localhost/$IMAGE")
trap 'bh rm "$ctr" >/dev/null; rm -f "$out"' EXIT
root=$(bh mount "$ctr")
paths=()
for dir in "$root"/usr/local/lib/python3*/*-packages "$root"/opt/venv/lib/python3*/site-packages; do
    [ -d "$dir" ] && paths+=(--path "$dir")
done
status=0
"$venv/bin/pip-audit" "${paths[@]}" 2>&1 | tee "$out" || status=$?
verdict
exit "$status"

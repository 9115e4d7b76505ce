#!/usr/bin/env bash
# rnnserve on an NVIDIA GPU: installs onnxruntime-gpu at the version pyproject.toml pins for onnxruntime (the two share
# the module name `onnxruntime`: only one may be installed), serves with RNNSERVE_DEVICE=cuda, checks that /info's
# providers include CUDAExecutionProvider, runs the ONNX-vs-PyTorch parity tests and a short benchmark, and writes
# everything under the results directory. About 5-8 minutes on a machine with the wheels reachable.
#
#   bench/gpu.sh [results-dir]        # default: $OUT, else runs/gpu
#
# Environment: VENV (default .venv-gpu), PYTHON (default python3), PORT (default 8010), BENCH_SECONDS (default 2),
# PIP_ARGS (extra pip arguments, e.g. "--no-index --find-links=/wheels" on a machine without internet; the [train]
# extra brings torch for the parity tests and the PyTorch baselines).
# Figures land in <results-dir>/benchmarks.md and results.json; copy the parts worth keeping into docs/benchmarks.md
# ("On a GPU"). Exit status: non-zero at the first failed step, and the step is named in <results-dir>/gpu.log.
set -euo pipefail

cd "$(dirname "$0")/.."
RESULTS=${1:-${OUT:-runs/gpu}}
VENV=${VENV:-.venv-gpu}
PYTHON=${PYTHON:-python3}
PORT=${PORT:-8010}
BENCH_SECONDS=${BENCH_SECONDS:-2}
read -r -a PIP_EXTRA <<<"${PIP_ARGS:-}"
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
LOG="$RESULTS/gpu.log"
SERVER_PID=""

step() { echo "== $*" | tee -a "$LOG"; }
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT

step "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi failed"; } \
    | tee "$RESULTS/gpu.txt" | tee -a "$LOG"

step "environment: $VENV"
ORT_VERSION=$(sed -n 's/.*"onnxruntime==\([0-9.]*\)".*/\1/p' pyproject.toml)
[[ -n "$ORT_VERSION" ]] || { echo "no onnxruntime pin in pyproject.toml" | tee -a "$LOG"; exit 1; }
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
if [[ "$("$PY" -c 'import importlib.metadata as m; print(m.version("onnxruntime-gpu"))' 2>/dev/null)" != "$ORT_VERSION" ]]; then
    "$PY" -m pip install -q "${PIP_EXTRA[@]}" -e ".[train,dev]" >>"$LOG" 2>&1
    "$PY" -m pip uninstall -y -q onnxruntime >>"$LOG" 2>&1 || true
    "$PY" -m pip install -q "${PIP_EXTRA[@]}" "onnxruntime-gpu==$ORT_VERSION" >>"$LOG" 2>&1
fi
"$PY" -c "import onnxruntime as o; print(o.__version__, o.get_available_providers())" | tee -a "$LOG"

step "serve with RNNSERVE_DEVICE=cuda on port $PORT"
RNNSERVE_DEVICE=cuda RNNSERVE_PORT=$PORT "$PY" -m service.server >"$RESULTS/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
    if "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/health', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited; see server.log" | tee -a "$LOG"; exit 1; }
    sleep 0.5
done
"$PY" - "$PORT" "$RESULTS/info.json" <<'PYEOF' | tee -a "$LOG"
import json, sys, urllib.request

port, out = sys.argv[1], sys.argv[2]
info = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=5).read())
open(out, "w").write(json.dumps(info, indent=1))
providers = {w["id"]: w.get("providers", []) for w in info["workers"]}
print("providers:", providers)
missing = [w for w, p in providers.items() if "CUDAExecutionProvider" not in p]
if not providers or missing:
    sys.exit(f"CUDAExecutionProvider missing in workers {missing or 'all'}")
PYEOF
stop_server

step "parity: ONNX vs PyTorch"
"$PY" -m pytest -q tests/training/test_export_parity.py tests/test_bench.py -k "parity or weights_map" \
    2>&1 | tee "$RESULTS/parity.txt" | tail -3 | tee -a "$LOG"

step "short benchmark, RNNSERVE_DEVICE=cuda, $BENCH_SECONDS s per point"
"$PY" -m bench.run --device=cuda --seconds="$BENCH_SECONDS" --rounds=2 --no-sweep \
    --out="$RESULTS/benchmarks.md" --json="$RESULTS/results.json" --logs="$RESULTS/logs" 2>&1 | tee -a "$LOG"

step "done: $RESULTS"

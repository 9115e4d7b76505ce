"""`make bench`: measure ours against the two PyTorch baselines, in process and over HTTP, sweep the server
settings, and regenerate docs/benchmarks.md (and bench/results.json) from the numbers.

    python -m bench.run                      # the full run, under 10 minutes on 2 cores
    python -m bench.run --seconds=1 --no-sweep --out=bench/quick.md   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import model_only, report, tail  # tail: issue 18, baseline (c) and the tail
from bench.loadgen import process_cpu_each
from bench.payloads import bodies
from bench.scenario import Plan, head_to_head, run_server, sweep
from bench.servers import descendants
from service.settings import DEFAULT_ARTIFACTS

REPO = Path(__file__).resolve().parents[1]

# Settings combinations of the sweep (RNNSERVE_* variables; the first is the defaults).
SWEEP: list[dict[str, str]] = [
    {},
    {"RNNSERVE_ORT_THREADS": "2"},
    {"RNNSERVE_GENERATE_THREADS": "1"},  # the default before /generate got 2 threads
    {"RNNSERVE_WORKERS_SENTIMENT": "2", "RNNSERVE_WORKERS_NER": "2"},
    {"RNNSERVE_MAX_BATCH_SIZE": "8"},
    {"RNNSERVE_BATCH_TIMEOUT": "0.002"},
    {"RNNSERVE_API_SERVERS": "1"},
]


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    flags = Path("/proc/cpuinfo").read_text()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f" {f}" in flags]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout
    except OSError:
        commit = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": isa,
        "memory_gb": round(mem_kb / 1024**2, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {p: version(p) for p in ("onnxruntime", "torch", "litserve", "fastapi", "uvicorn", "numpy")},
        "commit": commit.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def busy_processes(seconds: float = 1.0) -> list[str]:
    """Other processes using the CPU now, sampled from /proc over `seconds` (a benchmark next to a training run
    measures the training run)."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) != os.getpid()]
    before = process_cpu_each(pids)
    time.sleep(seconds)
    after = process_cpu_each(pids)
    busy = []
    for pid, cpu in after.items():
        share = (cpu - before.get(pid, cpu)) / seconds
        if share > 0.2:
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            busy.append(f"{100 * share:.0f}% {args[:80]}")
    return busy


class Interference:
    """Samples, every `period` seconds, the CPU of processes that are not this benchmark (nor its servers)."""

    def __init__(self, period: float = 2.0) -> None:
        self.period, self.samples = period, []  # type: ignore[var-annotated]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _others(self) -> dict[int, float]:
        mine = {os.getpid(), *descendants(os.getpid())}
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) not in mine]
        return process_cpu_each(pids)

    def _run(self) -> None:
        before, t0 = self._others(), time.perf_counter()
        while not self.stop.wait(self.period):
            after, t1 = self._others(), time.perf_counter()
            used = sum(max(0.0, cpu - before.get(pid, cpu)) for pid, cpu in after.items())
            self.samples.append(used / (t1 - t0))
            before, t0 = after, t1

    def __enter__(self) -> Interference:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    def summary(self) -> dict[str, float]:
        xs = self.samples or [0.0]
        return {"mean_cores": sum(xs) / len(xs), "max_cores": max(xs)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=Path(os.environ.get("RNNSERVE_ARTIFACTS", DEFAULT_ARTIFACTS)))
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per load point")
    parser.add_argument("--sweep-seconds", type=float, default=1.5, help="measured seconds per sweep point")
    parser.add_argument("--sweep-rounds", type=int, default=2, help="rounds of the sweep's points")
    parser.add_argument("--rounds", type=int, default=5, help="head-to-head rounds of ours, (a) and (b); 0: none")
    parser.add_argument("--tail-rounds", type=int, default=2, help="issue 18: rounds of ours vs (c); 0: none")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false")
    parser.add_argument("--servers", default="ours,fastapi-torch,litserve-torch")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()) / "rnnserve-bench-logs")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "busy_before": busy_processes()}
    results["command"] = "make bench  # python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    if results["busy_before"]:
        print("warning: other processes are busy, figures will be low:", *results["busy_before"], sep="\n  ")
    env = {"RNNSERVE_ARTIFACTS": str(args.artifacts.resolve())}
    b = bodies()
    plan = Plan(seconds=args.seconds)
    results["plan"] = asdict(plan)
    results["bodies"] = {"sentiment": len(b.sentiment), "ner": len(b.ner), "batch_texts": b.batch_texts}

    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:4.0f} s] {message}", flush=True)

    def phase(name: str) -> None:
        nonlocal mark
        phases[name] = time.perf_counter() - mark
        mark = time.perf_counter()

    with Interference() as others:
        say("model-only ...")
        results["matmul_gflops"] = model_only.matmul_gflops()
        texts = {"sentiment": b.sentiment_texts, "ner": b.ner_texts}
        results["model_only"] = [asdict(r) for r in model_only.measure(args.artifacts, texts)]
        results["padding"] = model_only.padding_study(args.artifacts, texts)
        results["op_profile"] = model_only.op_profile(args.artifacts, texts)
        results["chunks"] = model_only.chunk_study(args.artifacts, texts)
        phase("model only")

        results["servers"] = {}
        for kind in args.servers.split(","):
            say(f"{kind} ...")
            results["servers"][kind] = asdict(run_server(kind, env, b, plan, args.logs, log=say))
        phase("servers one by one")

        kinds = [k for k in ("ours", "fastapi-torch", "litserve-torch") if k in args.servers.split(",")]
        if args.rounds and "ours" in kinds and len(kinds) > 1:
            say("head to head ...")
            results["head_to_head"] = head_to_head(kinds, env, b, args.rounds, args.seconds, args.logs, say)
        phase("head to head")

        # --- issue 18 (bench/tail.py): ours vs baseline (c), one server at a time, tails and the timeline ---
        if args.tail_rounds:
            say("tail: ours and (c) plain LitServe + onnxruntime, one at a time ...")
            results["tail"] = tail.measure(env, b, args.seconds, args.tail_rounds, args.logs, say)
        phase("tail vs (c)")
        # --- end issue 18 ---

        results["sweep"] = []
        if args.sweep:
            say(f"sweep: {len(SWEEP)} settings side by side, {args.sweep_rounds} rounds")
            results["sweep"] = sweep(
                SWEEP,
                env,
                b,
                args.sweep_seconds,
                args.sweep_rounds,
                args.logs,
                say,
            )
        phase("sweep")
    results["phases"] = phases
    results["interference"] = others.summary()
    results["busy_after"] = busy_processes()
    results["duration_s"] = time.perf_counter() - started

    # Paths relative to the repository: the report describes the run, not this machine's folders.
    results = json.loads(json.dumps(results).replace(str(REPO) + "/", ""))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.render(results))
    print(f"wrote {args.out} and {args.json} in {results['duration_s']:.0f} s")


if __name__ == "__main__":
    main()

"""`make bench`: measure ours against the two PyTorch baselines, in process and over HTTP, and against plain LitServe
+ onnxruntime with the tail (bench/tail.py), sweep the server settings, and regenerate docs/benchmarks.md (and
bench/results.json) from the numbers.

    python -m bench.run                      # the full run, about 12 minutes on 2 cores
    python -m bench.run --seconds=1 --no-sweep --out=bench/quick.md   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench import model_only, report, servers, tail
from bench.cpu import process_cpu_each
from bench.kinds import KINDS, OURS
from bench.payloads import FIRST_CHAR_TOKENS, TEMPERATURE, bodies
from bench.results import BodyCounts, HeadToHead, Interference, Machine, Plan, Results, ServerResult, SweepRow
from bench.scenario import head_to_head, run_server, sweep
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


def machine() -> Machine:
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
    return Machine(
        cpu=cpu,
        cores=os.cpu_count() or 1,
        isa=isa,
        memory_gb=round(mem_kb / 1024**2, 1),
        os=platform.platform(),
        python=platform.python_version(),
        packages={p: _version(p) for p in PACKAGES},
        commit=commit.strip(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )


# The packages the report names. onnxruntime-gpu installs the module `onnxruntime` under its own distribution name.
PACKAGES = ("onnxruntime", "onnxruntime-gpu", "torch", "litserve", "fastapi", "uvicorn", "numpy")


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


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


class Sampler:
    """Samples, every `period` seconds, the CPU of processes that are not this benchmark (nor its servers)."""

    def __init__(self, period: float = 2.0) -> None:
        self.period, self.samples = period, list[float]()
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

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    def summary(self) -> Interference:
        xs = self.samples or [0.0]
        return Interference(sum(xs) / len(xs), max(xs), self.period)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=Path(os.environ.get("RNNSERVE_ARTIFACTS", DEFAULT_ARTIFACTS)))
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per load point")
    parser.add_argument("--sweep-seconds", type=float, default=1.5, help="measured seconds per sweep point")
    parser.add_argument("--sweep-rounds", type=int, default=2, help="rounds of the sweep's points")
    parser.add_argument("--rounds", type=int, default=5, help="head-to-head rounds of ours, (a) and (b); 0: none")
    parser.add_argument("--tail-rounds", type=int, default=2, help="issue 18: rounds of ours vs (c); 0: none")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), help="RNNSERVE_DEVICE of the servers (default: theirs)"
    )
    parser.add_argument("--servers", default=",".join(k.name for k in KINDS), help="kinds from bench/kinds.py")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--logs", type=Path, default=servers.LOGS)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    box = machine()
    busy_before = busy_processes()
    command = "make bench  # python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    if busy_before:
        print("warning: other processes are busy, figures will be low:", *busy_before, sep="\n  ")
    env = {"RNNSERVE_ARTIFACTS": str(args.artifacts.resolve())}  # servers get no other RNNSERVE_* of this shell
    if args.device:
        env["RNNSERVE_DEVICE"] = args.device
    b = bodies()
    plan = Plan(seconds=args.seconds)
    counts = BodyCounts(len(b.sentiment), len(b.ner), b.batch_texts, b.new_tokens, FIRST_CHAR_TOKENS, TEMPERATURE)

    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:4.0f} s] {message}", flush=True)

    def phase(name: str) -> None:
        nonlocal mark
        phases[name] = time.perf_counter() - mark
        mark = time.perf_counter()

    kinds = [k.name for k in KINDS if k.name in args.servers.split(",")]
    with Sampler() as others:
        say("model-only ...")
        gflops = model_only.matmul_gflops()
        texts = {"sentiment": b.sentiment_texts, "ner": b.ner_texts}
        rows = model_only.measure(args.artifacts, texts)
        padding = model_only.padding_study(args.artifacts, texts)
        profile = model_only.op_profile(args.artifacts, texts)
        chunks = model_only.chunk_study(args.artifacts, texts)
        phase("model only")

        measured: dict[str, ServerResult] = {}
        for kind in kinds:
            say(f"{kind} ...")
            measured[kind] = run_server(kind, env, b, plan, args.logs, log=say)
        phase("servers one by one")

        duel: HeadToHead | None = None
        if args.rounds and OURS in kinds and len(kinds) > 1:
            say("head to head ...")
            duel = head_to_head(kinds, env, b, args.rounds, args.seconds, args.logs, say)
        phase("head to head")

        tail_results = None  # issue 18 (bench/tail.py): ours vs baseline (c), one server at a time, and the timeline
        if args.tail_rounds:
            say("tail: ours and (c) plain LitServe + onnxruntime, one at a time ...")
            tail_results = tail.measure(env, b, args.seconds, args.tail_rounds, args.logs, say)
        phase("tail vs (c)")

        rows_sweep: list[SweepRow] = []
        if args.sweep:
            say(f"sweep: {len(SWEEP)} settings side by side, {args.sweep_rounds} rounds")
            rows_sweep = sweep(SWEEP, env, b, args.sweep_seconds, args.sweep_rounds, args.logs, say)
        phase("sweep")
    results = Results(
        machine=box,
        command=command,
        plan=plan,
        bodies=counts,
        matmul_gflops=gflops,
        model_only=rows,
        servers=measured,
        duration_s=time.perf_counter() - started,
        busy_before=busy_before,
        padding=padding,
        op_profile=profile,
        chunks=chunks,
        head_to_head=duel,
        sweep=rows_sweep,
        phases=phases,
        interference=others.summary(),
        busy_after=busy_processes(),
        matmul_n=model_only.MATMUL_N,
        tail=tail_results,
    )

    # Paths relative to the repository: the report describes the run, not this machine's folders.
    saved = json.loads(json.dumps(results.to_json()).replace(str(REPO) + "/", ""))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(saved, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.render(Results.from_json(saved)))
    print(f"wrote {args.out} and {args.json} in {results.duration_s:.0f} s")


if __name__ == "__main__":
    main()

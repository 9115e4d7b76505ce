"""Start a server under test as a child process, time it to a ready /health, measure its processes, stop it.

Each kind is a module run as `python -m <module>` (the list: bench/kinds.py; baseline (c), `PLAIN_LITSERVE`, is
outside `KINDS` and started by bench/tail.py).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.kinds import KINDS, PLAIN_LITSERVE
from bench.results import Memory, ProcessMemory

REPO = Path(__file__).resolve().parents[1]
LOGS = Path(tempfile.gettempdir()) / "rnnserve-bench-logs"  # each started server's output (--logs)

COMMANDS = {k.name: [sys.executable, "-m", k.module] for k in (*KINDS, PLAIN_LITSERVE)}
HEALTH_POLL_S = 0.02  # start-up time: process start -> first 200 from /health, polled this often


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(port: int, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    finally:
        conn.close()


@dataclass
class Running:
    kind: str
    process: subprocess.Popen[bytes]
    port: int
    startup_s: float
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def pids(self) -> list[int]:
        return [self.process.pid, *sorted(descendants(self.process.pid))]

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start(kind: str, env: dict[str, str], logdir: Path, wait: float = 120.0) -> Running:
    """Start the server and poll /health every `HEALTH_POLL_S`: start-up time is process start -> first 200."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RNNSERVE_", "LIT_"))}
    full_env.update(env)
    full_env.update(RNNSERVE_PORT=str(port), RNNSERVE_LOG_LEVEL="warning", PYTHONPATH=str(REPO))
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{kind}-{port}.log"
    t0 = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(COMMANDS[kind], cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    running = Running(kind, process, port, 0.0, log, env)
    while time.perf_counter() - t0 < wait:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited with {process.returncode}:\n{running.log_tail()}")
        with contextlib.suppress(OSError):
            if health(port) == 200:
                running.startup_s = time.perf_counter() - t0
                return running
        time.sleep(HEALTH_POLL_S)
    stop(running)
    raise RuntimeError(f"{kind} not healthy after {wait}s:\n{running.log_tail()}")


def stop(running: Running, wait: float = 20.0) -> None:
    """SIGTERM (ours and baseline (b) drain and stop their workers on it, uvicorn too), then SIGKILL for anything of
    this tree still alive. Not SIGINT: a benchmark started in the background (`make bench &`) passes SIGINT on as
    ignored, and every server then sat out the whole `wait` (3.7 of the run's 11 minutes)."""
    pids = running.pids()
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.process.wait(wait)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait(5)
    for pid in pids[1:]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether the process runs: a zombie (exited, not yet reaped) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def memory(pids: list[int]) -> Memory:
    rss = pss = 0.0
    torch_pids = []
    alive = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        alive += 1
        for line in rollup.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1]) / 1024
            elif line.startswith("Pss:"):
                pss += int(line.split()[1]) / 1024
        if "libtorch" in maps:
            torch_pids.append(pid)
    return Memory(alive, rss, pss, torch_pids)


def memory_each(pids: list[int]) -> list[ProcessMemory]:
    """PSS and RSS of each process, with what it is (its command line, shortened; LitServe's workers and manager
    are `multiprocessing` children, named by their parent-relative order)."""
    out: list[ProcessMemory] = []
    for pid in pids:
        mem = memory([pid])
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        threads = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads:")), 0)
        role = "main" if pid == pids[0] else ("spawned child" if "spawn_main" in cmd else "child")
        out.append(ProcessMemory(pid, role, cmd[:90], mem.pss_mb, mem.rss_mb, threads))
    return out

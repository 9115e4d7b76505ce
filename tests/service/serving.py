"""Start a real `python -m service.server` on a free port, wait for /health, and stop it the way an orchestrator
does (SIGTERM). torch is blocked in the server's processes: importing it anywhere would fail loudly."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.servers import alive, descendants  # one /proc walker for the tests and the benchmark

REPO = Path(__file__).resolve().parents[2]
TORCH_BLOCKER = 'raise ImportError("torch must not be imported by the serving process")\n'


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def logged_errors(self) -> list[str]:
        """Lines at level ERROR and tracebacks the server has logged so far. A broken process can keep /health
        green while its requests hang (an HTTP process's answer reader died on one error in CI): its log says why."""
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if " ERROR " in line or '"level": "ERROR"' in line or line.startswith(("ERROR:", "Traceback"))
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_in_a_terminal() -> None:
    """A process group of its own with SIGINT at its default, as a shell starts a foreground job (a background
    runner such as CI may have started the tests with SIGINT ignored, which children would inherit)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_server(
    artifacts: Path,
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    wait: float = 120,
    terminal: bool = False,
) -> Server:
    blocker = workdir / "block-torch" / "torch"
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / "__init__.py").write_text(TORCH_BLOCKER)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RNNSERVE_", "LIT_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(blocker.parent), str(REPO)]),
        RNNSERVE_PORT=str(port),
        RNNSERVE_ARTIFACTS=str(artifacts),
        RNNSERVE_LOG_LEVEL="info",  # the default: what a deployment would log
        **(extra_env or {}),
    )
    log = workdir / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.server"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=as_in_a_terminal if terminal else None,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    stop_server(server)
    raise RuntimeError(f"server not healthy after {wait}s:\n{server.log_tail()}")


def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    """Wait for `condition()` to hold, checking every `poll` seconds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(poll)


def processes_with_env(name: str, value: str) -> set[int]:
    """Live processes whose environment holds name=value: finds workers even after they were orphaned."""
    wanted, found = f"{name}={value}".encode(), set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if wanted in environ.read_bytes().split(b"\0") and alive(int(environ.parent.name)):
                found.add(int(environ.parent.name))
        except (OSError, ValueError):
            continue
    return found


def outliving(pids: set[int], grace: float) -> set[int]:
    """The processes among `pids` still alive after waiting up to `grace` seconds for all of them to exit. Some exit
    a moment after the main process, not before it: multiprocessing's resource tracker and the manager read their
    parent's end of file only once it is gone, and on a loaded machine that moment can be long."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return {p for p in pids if alive(p)}


def stop_server(server: Server, timeout: float = 45) -> set[int]:
    """SIGTERM the main process; returns the processes (main or workers) still alive after `timeout`, killed then."""
    family = descendants(server.process.pid) | {server.process.pid}
    server.process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=timeout)
    survivors = outliving(family, grace=5)
    for pid in survivors:  # only processes this test started
        os.kill(pid, signal.SIGKILL)
    server.process.poll()
    return survivors

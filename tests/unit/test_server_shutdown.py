"""The server's stop against LitServe's worker monitor, in a child process: the real `Server` and LitServe's own
monitor thread watching a real (sleeping) worker process, with no HTTP process. A stop that outlasts one of the
monitor's polls made it log errors (under load in CI's conditions); here the wait after the stop makes that poll
certain instead of a matter of load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import logging, multiprocessing as mp, time
from service.server import build_server
from service.settings import Settings

logging.basicConfig(level="INFO")
server = build_server(Settings(), {})
manager = server._init_manager(1)
worker = mp.get_context("spawn").Process(target=time.sleep, args=(60,), name="inference-worker-0")
worker.start()
server.inference_workers = [worker]
server._start_worker_monitoring(manager, {})
time.sleep(0.2)  # the monitor has looked once and sleeps
server._perform_graceful_shutdown(manager, {}, "keyboard_interrupt")
time.sleep(2 * server.monitor_internal + 0.5)  # a monitor still running would have looked again by now
print("worker exit code", worker.exitcode)
"""


def test_a_stop_leaves_the_worker_monitor_nothing_to_report(artifacts: Path) -> None:
    env = {**os.environ, "RNNSERVE_ARTIFACTS": str(artifacts), "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO
    )
    log = run.stdout  # LitServe logs to stdout, `logging.basicConfig` to stderr: both, in order
    assert run.returncode == 0, log
    assert "worker exit code -15" in log, log  # terminated by the stop (SIGTERM), not at the test's exit
    assert "Shutting down LitServe" in log, log  # LitServe's part of the stop ran
    assert [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line] == [], log

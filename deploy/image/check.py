"""`make image-test`: run the built image the way the README's container section does and check it as a user would.

    python3 deploy/image/check.py [--image rnnserve:0.1.0]      (standard library only; root where buildah runs it)

- The `docker run` line of the README's "Container" section is what runs: its flags are read from the README, and a
  flag this script does not know fails the check (so the README and the check cannot drift apart). The host port of
  `-p` is replaced by a free one.
- With a Docker engine, `docker run` itself. Without one, the same flags by hand on the image built by buildah
  (container.py says how).
- Checks: the OCI labels; /health answers 200 within the HEALTHCHECK's start period, and the HEALTHCHECK command
  itself passes; a write to $HOME fails with EROFS while /tmp holds the server's files; each `curl` example of the
  README's "Try it" section gives the answer printed there (scores to the printed decimals; streamed text joined);
  torch is not installed; every process runs as the image's non-root user and tini is PID 1; then SIGTERM to PID 1
  during a stream: the stream finishes (a drain), PID 1 exits 0, every process is gone and the log has no error.
Prints one line per check and the timings as JSON at the end. What the README says is read by readme.py, the
container is run by container.py; the checks are here.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The sibling modules, however this file is loaded: `python3 deploy/image/check.py` puts this folder on sys.path
# itself, tests/test_image.py loads the file by its path, which does not.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from container import BuildahContainer, DockerContainer, docker_engine, free_port
from readme import REPO, answer_pairs, joined_stream, matches, printed_pairs, readme_examples, readme_run_args
from verdict import fail, ok

# Writes to $HOME (the one directory of the root filesystem the user owns) and to /tmp; lists what /tmp holds.
WRITE_PROBE = """import os, tempfile
try:
    open(os.path.expanduser("~/probe"), "w")
    home = "written"
except OSError as err:
    home = err.errno
with tempfile.NamedTemporaryFile(dir="/tmp"):
    print(home, sorted(os.listdir("/tmp")))"""
DRAIN_TOKENS = 1000  # the default RNNSERVE_MAX_NEW_TOKENS: a stream of about a second, in flight at SIGTERM


# --- the README's examples against the live answers ------------------------------------------------------------------


def send_curl(argv: list[str], port: int) -> tuple[int, str, bytes]:
    url, data, headers = None, None, {}
    it = iter(argv[1:])
    for arg in it:
        if arg in ("-H", "--header"):
            name, _, value = next(it).partition(":")
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data"):
            data = next(it)
        elif arg.startswith("-"):
            continue  # -s, -N: how curl prints, not what it sends
        else:
            url = arg
    if url is None:
        fail(f"no URL in {argv}")
    host_path = re.sub(r"^(https?://)?localhost:8000", "", url)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST" if data is not None else "GET", host_path, data, headers)
    r = conn.getresponse()
    return r.status, r.getheader("content-type", ""), r.read()


def check_examples(port: int) -> int:
    count = 0
    for command, printed_text in readme_examples():
        argv = shlex.split(command, comments=True)
        status_note = re.search(r"#\s*(\d{3})\s*$", command)  # `... # 422`: the status the example shows
        status, ctype, body = send_curl(argv, port)
        want_status = int(status_note.group(1)) if status_note else 200
        shown = " ".join(argv)[:90]
        if status != want_status:
            fail(f"{shown}: status {status}, the README says {want_status}: {body[:300]!r}")
        printed = printed_pairs(printed_text)
        if ctype.startswith("text/event-stream"):
            events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ")]
            got = joined_stream([p for e in events for p in answer_pairs(e)])
            printed = joined_stream(printed)
        else:
            got = answer_pairs(json.loads(body))
        missing = matches(printed, got)
        if missing:
            fail(f"{shown}: the README prints {missing}, the image answered {body[:400].decode(errors='replace')}")
        count += 1
        ok(f"README example {shown}")
    if count < 5:
        fail(f"only {count} curl examples found in the README's 'Try it' section")
    return count


# --- the running image ----------------------------------------------------------------------------------------------


def get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


def wait_healthy(container: BuildahContainer | DockerContainer, limit: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if not container.running():
            fail(f"the container exited before /health answered 200:\n{container.log_tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if get(container.port, "/health", 2)[0] == 200:
                return time.monotonic() - start
        time.sleep(0.2)
    fail(f"/health not 200 within the HEALTHCHECK's start period ({limit:.0f} s):\n{container.log_tail()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    version = re.findall(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M)[0]
    parser.add_argument("--image", default=f"rnnserve:{version}")
    options = parser.parse_args()
    docker = docker_engine()
    image = options.image if docker else f"localhost/{options.image}"
    args = readme_run_args(image)
    timings: dict[str, Any] = {"runner": "docker" if docker else "buildah (unshare + chroot)", "image": image}
    with tempfile.TemporaryDirectory(prefix="rnnserve-image-test-") as tmp:
        port = free_port()
        container = (DockerContainer if docker else BuildahContainer)(image, args, port, Path(tmp))
        config = container.config
        labels = config.get("Labels") or {}
        for label in ("version", "source", "licenses", "revision"):
            if not labels.get(f"org.opencontainers.image.{label}"):
                fail(f"label org.opencontainers.image.{label} missing")
        if labels["org.opencontainers.image.version"] != version:
            fail(f"label version {labels['org.opencontainers.image.version']} != pyproject's {version}")
        ok(f"OCI labels: version {version}, source, licenses, revision {labels['org.opencontainers.image.revision']}")
        if config.get("User") in (None, "", "0", "root") or config["Entrypoint"][0] != "tini":
            fail(f"user {config.get('User')!r}, entrypoint {config.get('Entrypoint')}: want non-root and tini")
        start_period = config["Healthcheck"]["StartPeriod"] / 1e9
        try:
            container.start()
            timings["health_s"] = round(wait_healthy(container, start_period), 2)
            ok(f"/health 200 after {timings['health_s']} s (start period {start_period:.0f} s), flags {' '.join(args)}")
            check = config["Healthcheck"]["Test"]
            probe = container.exec([a.replace(":8000/", f":{container.inner_port}/") for a in check[1:]])
            if check[0] != "CMD" or probe.returncode != 0:
                fail(f"HEALTHCHECK {check}: exit {probe.returncode} {probe.stderr[-300:]}")
            ok("the HEALTHCHECK command passes inside the image")
            written = container.exec(["python", "-c", WRITE_PROBE])
            if (
                written.returncode != 0
                or not written.stdout.startswith("30 ")
                or "rnnserve-metrics-" not in written.stdout
            ):
                fail(f"want EROFS (30) in $HOME, the server's files in /tmp: {written.stdout} {written.stderr}")
            ok(f"the root filesystem is read-only (EROFS in $HOME), /tmp is written: {written.stdout.split(' ', 1)[1]}")

            timings["readme_examples"] = check_examples(port)
            info = json.loads(get(port, "/info")[1])
            if any(w.get("torch_imported") is not False for w in info["workers"]) or len(info["workers"]) < 3:
                fail(f"/info workers: {info['workers']}")
            status, page = get(port, "/")
            if status != 200 or b"<html" not in page.lower():
                fail("GET / is not the page")
            if get(port, "/metrics")[0] != 200:
                fail("GET /metrics")
            no_torch = container.exec(["python", "-c", "import importlib.util as u; print(u.find_spec('torch'))"])
            if no_torch.stdout.strip() != "None":
                fail(f"torch is importable in the image: {no_torch.stdout} {no_torch.stderr[-300:]}")
            ok("torch is not installed; /info: no worker imported it; GET / and /metrics answer")

            procs = container.processes()
            if not procs or any(uid != container.uid for _, uid, _ in procs.values()):
                fail(f"processes and their uids: {procs}")
            timings["processes"] = len(procs)
            if not docker:
                pid1 = [name for name, _, inside in procs.values() if inside == 1]
                if pid1 != ["tini"]:
                    fail(f"PID 1 is {pid1}, not tini")
            ok(f"{len(procs)} processes, all uid {container.uid}" + ("" if docker else ", tini is PID 1"))

            # SIGTERM with a stream in flight: the stream ends normally, then every process goes, PID 1 exits 0.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = {"prompt": "KING:", "max_new_tokens": DRAIN_TOKENS, "seed": 1, "stream": True}
            conn.request("POST", "/generate", json.dumps(body), {"Content-Type": "application/json"})
            stream = conn.getresponse()
            stream.readline()
            signalled = time.monotonic()
            container.sigterm()
            rest = stream.read().decode()
            stream_end = time.monotonic() - signalled
            last = json.loads([line for line in rest.splitlines() if line.startswith("data: ")][-1][6:])
            if last.get("generated_tokens") != DRAIN_TOKENS:
                fail(f"the stream in flight at SIGTERM did not finish: {rest[-300:]}")
            code = container.wait(60)
            while container.processes():
                if time.monotonic() - signalled > 60:
                    fail(f"processes left 60 s after SIGTERM: {container.processes()}")
                time.sleep(0.01)
            timings["sigterm_stream_end_s"] = round(stream_end, 2)
            timings["sigterm_all_gone_s"] = round(time.monotonic() - signalled, 2)
            if code != 0:
                fail(f"PID 1 exited with {code} after SIGTERM:\n{container.log_tail()}")
            errors = [ln for ln in container.log_tail(10_000).splitlines() if " ERROR " in ln or "Traceback" in ln]
            if errors:
                fail("errors in the log:\n" + "\n".join(errors[:20]))
            ok(
                f"SIGTERM during a {DRAIN_TOKENS}-character stream: it finished {stream_end:.2f} s later, "
                f"every process gone after {timings['sigterm_all_gone_s']} s, exit 0, no error in the log"
            )
        except BaseException:
            print(container.log_tail(), file=sys.stderr)
            raise
        finally:
            container.remove()
    print(json.dumps(timings))


if __name__ == "__main__":
    main()

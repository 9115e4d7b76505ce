"""`make image-test`: run the built image the way the README's container section does and check it as a user would.

    python3 deploy/image/check.py [--image rnnserve:0.1.0]      (standard library only; root where buildah runs it)

- The `docker run` line of the README's "Container" section is what runs: its flags are read from the README, and a
  flag this script does not know fails the check (so the README and the check cannot drift apart). The host port of
  `-p` is replaced by a free one.
- With a Docker engine, `docker run` itself. Without one, the same flags by hand on the image built by buildah: a
  PID namespace in which the image's ENTRYPOINT (tini) is PID 1, the image's root filesystem mounted read-only
  (`--read-only`), a tmpfs on /tmp as Docker mounts it (`--tmpfs`: noexec, nosuid, 64 MiB), the image's user,
  working directory and environment, the host's network (so `-p H:8000` becomes RNNSERVE_PORT=H).
- Checks: the OCI labels; /health answers 200 within the HEALTHCHECK's start period, and the HEALTHCHECK command
  itself passes; a write to $HOME fails with EROFS while /tmp holds the server's files; each `curl` example of the
  README's "Try it" section gives the answer printed there (scores to the printed decimals; streamed text joined);
  torch is not installed; every process runs as the image's non-root user and tini is PID 1; then SIGTERM to PID 1
  during a stream: the stream finishes (a drain), PID 1 exits 0, every process is gone and the log has no error.
Prints one line per check and the timings as JSON at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
KNOWN_FLAGS = {"--rm", "--read-only", "--tmpfs", "-p", "-e"}  # what the buildah runner below reproduces
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


def fail(message: str) -> NoReturn:
    raise SystemExit(f"image-test FAILED: {message}")


def ok(message: str) -> None:
    print(f"image-test: ok  {message}", flush=True)


# --- the README ------------------------------------------------------------------------------------------------------


def section(title: str) -> str:
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not match:
        fail(f"README.md has no '## {title}' section")
    return match.group(1)


def shell_lines(block: str) -> list[str]:
    """Commands of a code block, continuation lines joined, comments and `$ ` prompts dropped."""
    lines, pending = [], ""
    for raw in block.splitlines():
        line = raw.removeprefix("$ ")
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip().removesuffix("\\") if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            lines.append(pending.strip())
            pending = ""
    return lines


def readme_run_args(image: str) -> list[str]:
    """The flags of the README's `docker run` line, checked against what this script can reproduce."""
    (block,) = re.findall(r"```bash\n(.*?)```", section("Container"), re.S)[:1]
    commands = [shlex.split(c.split(" #")[0]) for c in shell_lines(block)]
    run = next((c for c in commands if c[:2] == ["docker", "run"]), None)
    build = next((c for c in commands if c[:2] == ["docker", "build"]), None)
    if not run or not build:
        fail("the README's container section needs a `docker build` and a `docker run` line")
    name = build[build.index("-t") + 1]
    if run[-1] != name or not image.split("/")[-1].startswith(name):
        fail(f"the README runs {run[-1]!r}, builds {name!r}; this check runs {image!r}")
    args = run[2:-1]
    i = 0
    while i < len(args):
        if args[i] not in KNOWN_FLAGS:
            fail(f"the README's docker run uses {args[i]}, which deploy/image/check.py does not reproduce")
        i += 2 if args[i] in ("--tmpfs", "-p", "-e") else 1
    return args


def readme_examples() -> list[tuple[str, str]]:
    """(curl command, printed answer) for each `$ curl` of the "Try it" section's first code block."""
    block = re.search(r"```bash\n(.*?)```", section("Try it"), re.S)
    if not block:
        fail("the README's 'Try it' section has no bash block")
    examples = []
    for chunk in re.split(r"^\$ ", block.group(1), flags=re.M)[1:]:
        lines = chunk.rstrip().splitlines()
        command = lines.pop(0).rstrip()
        while command.endswith("\\"):
            command = command[:-1].rstrip() + " " + lines.pop(0).strip()
        examples.append((command, "\n".join(lines)))
    return examples


SCALAR = re.compile(r'"(\w+)":\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)')


def printed_pairs(text: str) -> list[tuple[str, Any, int]]:
    """("key", value, decimals printed) for each scalar in the README's (elided, not quite JSON) output."""
    pairs = []
    for key, raw in SCALAR.findall(text):
        decimals = len(raw.split(".")[1]) if re.fullmatch(r"-?\d+\.\d+", raw) else -1
        pairs.append((key, json.loads(raw), decimals))
    return pairs


def answer_pairs(value: Any, out: list[tuple[str, Any]] | None = None, key: str = "") -> list[tuple[str, Any]]:
    out = [] if out is None else out
    if isinstance(value, dict):
        for k, v in value.items():
            answer_pairs(v, out, k)
    elif isinstance(value, list):
        for v in value:
            answer_pairs(v, out, key)
    elif key:
        out.append((key, value))
    return out


def joined_stream(pairs: list[tuple[str, Any, int]] | list[tuple[str, Any]]) -> list[tuple[Any, ...]]:
    """A stream's events as one: the pieces of text joined, the other fields in order (piece sizes vary with time)."""
    text = "".join(p[1] for p in pairs if p[0] == "text")
    return [("text", text, -1), *[(*p[:2], p[2] if len(p) > 2 else -1) for p in pairs if p[0] != "text"]]


def matches(printed: list[tuple[str, Any, int]], got: list[tuple[str, Any]]) -> str | None:
    """None if every printed (key, value) appears in the answer, in order; else the first one missing."""
    i = 0
    for key, want, decimals in printed:
        while i < len(got):
            k, v = got[i][:2]
            i += 1
            if k == key and (
                v == want if decimals < 0 else isinstance(v, float | int) and abs(v - want) <= 2 * 10**-decimals
            ):
                break
        else:
            return f"{key}={want!r}"
    return None


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


# --- running the image -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*argv: str, **kw: Any) -> str:
    return str(subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout).strip()


def docker_engine() -> bool:
    return (
        shutil.which("docker") is not None and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    )


class BuildahContainer:
    """`docker run` by hand on a buildah image: mount namespace, PID namespace, chroot, the image's user."""

    def __init__(self, image: str, args: list[str], port: int, logdir: Path) -> None:
        self.image, self.port, self.log = image, port, logdir / "container.log"
        self.inner_port = port  # the host's network: the server listens on the host port itself
        self.config = json.loads(run("buildah", "inspect", "--type", "image", image))["Docker"]["config"]
        self.ctr = run("buildah", "from", "--pull=never", "--name", f"rnnserve-image-test-{os.getpid()}", image)
        self.root = Path(run("buildah", "mount", self.ctr))
        self.env = dict(e.split("=", 1) for e in self.config["Env"])
        self.read_only, self.tmpfs = "--read-only" in args, []
        for flag, value in zip(args, [*args[1:], ""], strict=True):
            if flag == "--tmpfs":
                self.tmpfs.append(value)
            elif flag == "-e":
                k, _, v = value.partition("=")
                self.env[k] = v
            elif flag == "-p":
                if value.split(":")[-1] != self.env.get("RNNSERVE_PORT"):
                    fail(f"-p {value}: the image listens on {self.env.get('RNNSERVE_PORT')}")
                self.env["RNNSERVE_PORT"] = str(port)  # the host's network: the host port is the port
        user = self.config["User"]
        passwd = {
            int(f[2]): f for f in (line.split(":") for line in (self.root / "etc/passwd").read_text().splitlines())
        }
        self.uid = int(user)
        self.gid, self.env["HOME"] = int(passwd[self.uid][3]), passwd[self.uid][5]

    def _chroot(self, argv: list[str], workdir: str) -> list[str]:
        env = [f"{k}={v}" for k, v in self.env.items()]
        return ["chroot", f"--userspec={self.uid}:{self.gid}", "--groups=", str(self.root),
                "/usr/bin/env", "-i", "-C", workdir, *env, *argv]  # fmt: skip

    def start(self) -> None:
        mounts = [
            "mount --make-rprivate /",
            f"mount --bind {self.root} {self.root}",
            f"mount -o remount,bind,ro {self.root}" if self.read_only else "true",
            f"mount -t proc proc {self.root}/proc",
            f"mount -t sysfs -o ro sysfs {self.root}/sys",
            f"mount --rbind /dev {self.root}/dev",
            f"mount -t tmpfs -o rw,nosuid,nodev,noexec,size=65536k,mode=1777 shm {self.root}/dev/shm",
            *(
                f"mount -t tmpfs -o rw,nosuid,nodev,noexec,size=65536k,mode=1777 tmpfs {self.root}{t}"
                for t in self.tmpfs
            ),
        ]
        argv = self._chroot([*self.config["Entrypoint"], *self.config["Cmd"]], self.config["WorkingDir"] or "/")
        script = " && ".join(mounts) + " && exec " + shlex.join(argv)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                ["unshare", "--mount", "--pid", "--fork", "--kill-child", "sh", "-c", script], stdout=out, stderr=out
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
                if children:
                    self.pid1 = int(children[0])
                    return
            time.sleep(0.01)
        fail(f"the container did not start: {self.log_tail()}")

    def exec(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """A command in the running container (its mounts and PID namespace) as the image's user, like `docker exec`."""
        enter = ["nsenter", f"--target={self.pid1}", "--mount", "--pid"]
        return subprocess.run([*enter, *self._chroot(argv, "/")], capture_output=True, text=True, timeout=60)

    def processes(self) -> dict[int, tuple[str, int, int]]:
        """host pid -> (command, uid, pid inside) of every process in the container's PID namespace."""
        try:
            ns = os.readlink(f"/proc/{self.pid1}/ns/pid")
        except OSError:
            return {}
        found = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "ns/pid") == ns:
                        status = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines())
                        found[int(entry.name)] = (
                            status["Name"].strip(),
                            int(status["Uid"].split()[0]),
                            int(status["NSpid"].split()[-1]),
                        )
        return found

    def running(self) -> bool:
        return self.process.poll() is None

    def sigterm(self) -> None:
        os.kill(self.pid1, signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def remove(self) -> None:
        if hasattr(self, "process") and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        subprocess.run(["buildah", "rm", self.ctr], capture_output=True)


class DockerContainer:
    """`docker run -d` with the README's flags (less --rm, to read the exit code after the stop)."""

    def __init__(self, image: str, args: list[str], port: int, logdir: Path) -> None:
        self.image, self.port, self.log = image, port, logdir / "container.log"
        self.inner_port = 8000  # -p port:8000
        self.config = json.loads(run("docker", "image", "inspect", image))[0]["Config"]
        self.name = f"rnnserve-image-test-{os.getpid()}"
        self.args = [a for a in args if a != "--rm"]
        self.args = [
            f"{port}:{a.split(':')[-1]}" if p == "-p" else a for p, a in zip(["", *self.args], self.args, strict=False)
        ]
        self.uid = int(self.config["User"])

    def start(self) -> None:
        run("docker", "run", "-d", "--name", self.name, *self.args, self.image)

    def exec(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "exec", self.name, *argv], capture_output=True, text=True, timeout=60)

    def processes(self) -> dict[int, tuple[str, int, int]]:
        out = subprocess.run(["docker", "top", self.name, "-eo", "pid,uid,comm"], capture_output=True, text=True)
        rows = [line.split() for line in out.stdout.splitlines()[1:]]
        return {int(r[0]): (r[2], int(r[1]), -1) for r in rows if len(r) >= 3}

    def running(self) -> bool:
        return run("docker", "inspect", "-f", "{{.State.Running}}", self.name) == "true"

    def sigterm(self) -> None:
        run("docker", "kill", "-s", "TERM", self.name)

    def wait(self, timeout: float) -> int:
        return int(run("docker", "wait", self.name, timeout=timeout))

    def log_tail(self, lines: int = 40) -> str:
        logs = subprocess.run(["docker", "logs", "--tail", str(lines), self.name], capture_output=True, text=True)
        return logs.stdout + logs.stderr

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)


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

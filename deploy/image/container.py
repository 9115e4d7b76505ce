"""The image run as `docker run` with the README's flags: `DockerContainer` where a Docker engine runs, else
`BuildahContainer`, the same flags by hand on the image buildah built. Both answer the same calls (start, exec,
processes, running, sigterm, wait, log_tail, remove), so the checks do not know which one runs.

Without an engine: a PID namespace in which the image's ENTRYPOINT (tini) is PID 1, the image's root filesystem
mounted read-only (`--read-only`), a tmpfs on /tmp as Docker mounts it (`--tmpfs`: noexec, nosuid, 64 MiB), the
image's user, working directory and environment, and the host's network (so `-p H:8000` becomes RNNSERVE_PORT=H).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from verdict import fail

# What BuildahContainer reproduces; readme.readme_run_args fails on any other flag of the README's `docker run`.
KNOWN_FLAGS = {"--rm", "--read-only", "--tmpfs", "-p", "-e"}


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

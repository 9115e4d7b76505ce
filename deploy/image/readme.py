"""What the README says the image does: the flags of the "Container" section's `docker run` line, and each `$ curl`
example of the "Try it" section with the answer printed under it; and how a live answer is held against that print.

The README is the spec here, read as a user reads it: a flag the runner cannot reproduce, a missing section or an
answer unlike the printed one fails the image test, so the README and the image cannot drift apart.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from container import KNOWN_FLAGS
from verdict import fail

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


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
            fail(f"the README's docker run uses {args[i]}, which deploy/image/container.py does not reproduce")
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

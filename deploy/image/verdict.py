"""How the image test reports: a line per check that passed, and the first failure as the SystemExit that ends it
(`make image-test` fails with the reason as its last line; tests/test_image.py looks for "image-test FAILED")."""

from __future__ import annotations

from typing import NoReturn


def fail(message: str) -> NoReturn:
    raise SystemExit(f"image-test FAILED: {message}")


def ok(message: str) -> None:
    print(f"image-test: ok  {message}", flush=True)

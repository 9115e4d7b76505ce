"""The boundary to LitServe: only service/litserve_ext reaches into LitServe's modules, and it refuses to run on a
LitServe other than the one its extensions were written against."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.litserve_ext import LITSERVE_VERSION, check_litserve_version

SERVICE = Path(__file__).resolve().parents[2] / "service"
INTERNAL = re.compile(r"^\s*(from litserve\.|import litserve\.)", re.MULTILINE)
PRIVATE = re.compile(r"\b(response_buffer|litapi_request_queues|response_queue_id|_init_manager|_transport)\b")


def test_only_the_extension_imports_litserve_s_modules() -> None:
    offenders = [
        str(path.relative_to(SERVICE))
        for path in SERVICE.rglob("*.py")
        if "litserve_ext" not in path.parts and (INTERNAL.search(text := path.read_text()) or PRIVATE.search(text))
    ]
    assert offenders == [], "use service.litserve_ext's surface or LitServe's public API (import litserve as ls)"


def test_another_litserve_version_is_refused_with_the_reason() -> None:
    check_litserve_version(LITSERVE_VERSION)
    with pytest.raises(ImportError, match=r"needs litserve==0\.2\.19, found 0\.3\.0.*Upgrading LitServe"):
        check_litserve_version("0.3.0")

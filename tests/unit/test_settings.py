"""service.settings: RNNSERVE_ environment variables, defaults that do not depend on the current directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.limits import Limits
from service.settings import DEFAULT_ARTIFACTS, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("RNNSERVE_")]:
        monkeypatch.delenv(name)


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.artifacts == DEFAULT_ARTIFACTS and DEFAULT_ARTIFACTS.name == "artifacts"
    assert (DEFAULT_ARTIFACTS.parent / "service" / "settings.py").is_file()
    assert settings.limits() == Limits()
    assert settings.api_key is None


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNSERVE_PORT", "9001")
    monkeypatch.setenv("RNNSERVE_API_KEY", "zebra-17")
    monkeypatch.setenv("RNNSERVE_MAX_NEW_TOKENS", "50")
    monkeypatch.setenv("RNNSERVE_DEVICE", "cpu")
    settings = Settings()
    assert settings.port == 9001 and settings.device == "cpu"
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "zebra-17"
    assert "zebra-17" not in repr(settings)  # secrets stay out of logs
    assert settings.limits().max_new_tokens == 50


def test_threads_default_to_cores_over_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert Settings(workers_generate=2, workers_sentiment=1, workers_ner=1).threads_per_worker == 2
    assert Settings(workers_generate=8).threads_per_worker == 1
    assert Settings(ort_threads=3).threads_per_worker == 3


def test_generate_workers_get_at_least_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generation is sequential: its worker gets a second core's worth of intra-op threads where one exists."""
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert Settings().threads_for("sentiment") == Settings().threads_for("ner") == 1
    assert Settings().threads_for("charlm") == 2
    assert Settings(generate_threads=1).threads_for("charlm") == 1
    assert Settings(ort_threads=3).threads_for("charlm") == 3
    assert Settings(ort_threads=1).threads_for("charlm") == 1  # an explicit choice holds for every worker
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert Settings().threads_for("charlm") == 1
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert Settings().threads_for("charlm") == 5  # cores / workers, as for the others


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNSERVE_DEVICE", "tpu")
    with pytest.raises(ValidationError, match="device"):
        Settings()
    with pytest.raises(ValidationError, match="max_batch_size"):
        Settings(max_batch_size=1)

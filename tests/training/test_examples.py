"""The toy examples still run and still show what they are there to show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from examples import five_letter_words, hello_onehot, hihell, onehot_vs_embedding

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]
KINDS = ["rnn", "gru", "lstm"]


@pytest.mark.parametrize("kind", KINDS)
def test_hello_one_step_at_a_time_equals_whole_sequence(kind: str) -> None:
    result = hello_onehot.main(kind)  # type: ignore[arg-type]
    assert result["sequence_outputs"].shape == (1, 5, 2)
    torch.testing.assert_close(result["step_outputs"], result["sequence_outputs"], atol=1e-6, rtol=0)
    torch.testing.assert_close(result["h_n"][0], result["sequence_outputs"][:, -1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_five_letter_words_batch(kind: str) -> None:
    result = five_letter_words.main(kind)  # type: ignore[arg-type]
    assert result["outputs"].shape == (3, 5, 2)
    assert result["h_n"].shape == (1, 3, 2)
    assert bool((result["padded_outputs"][1, 3:] == 0).all())
    torch.testing.assert_close(result["padded_outputs"][1:, :3], result["alone_outputs"], atol=1e-6, rtol=0)
    torch.testing.assert_close(result["padded_h_n"][:, 1], result["alone_h_n"][:, 0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_hihell_reaches_ihello(kind: str) -> None:
    result = hihell.main(kind)  # type: ignore[arg-type]
    assert result.prediction == "ihello"
    assert result.losses[-1] < result.losses[0] / 10


def test_onehot_vs_embedding_both_learn() -> None:
    results = onehot_vs_embedding.main()
    assert results["lookup_is_one_hot_matmul"] is True
    for name in ("one_hot", "embedding"):
        result = results[name]
        assert isinstance(result, hihell.Result)
        assert result.prediction == "ihello", name


@pytest.mark.parametrize("command", [["examples/hihell.py"], ["-m", "examples.hihell"]])
def test_examples_run_from_the_repo_root(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *command], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "-> 'ihello'" in done.stdout

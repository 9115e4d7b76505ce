"""Temperature scaling and the expected calibration error (training/calibration.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training import calibration


def test_ece_by_hand() -> None:
    # Two rows at confidence 0.9 (one right: bin accuracy 0.5), two at 0.6 (both right): 0.5 * 0.4 + 0.5 * 0.4.
    probs = np.array([[0.1, 0.9], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    labels = np.array([1, 1, 1, 0])
    assert abs(calibration.ece(probs, labels) - 0.4) < 1e-9
    assert calibration.ece(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1, 0])) == 0.0


def test_fit_recovers_the_temperature_that_made_the_labels() -> None:
    """Labels drawn from softmax(z / 2): the fitted T is near 2, and calibrating lowers ECE and NLL."""
    rng = np.random.default_rng(0)
    z = torch.from_numpy(rng.normal(0, 4, size=(4000, 2)))
    labels = np.array([rng.random() < p for p in torch.softmax(z / 2.0, dim=1)[:, 1].numpy()], dtype=np.int64)
    temperature, metrics, after = calibration.calibrate(z, labels)
    assert 1.8 < temperature < 2.2
    assert metrics["valid_ece_after"] < metrics["valid_ece_before"] and metrics["valid_ece_after_crossfit"] < 0.03
    assert metrics["valid_nll_after"] < metrics["valid_nll_before"]
    assert (after.argmax(1) == z.numpy().argmax(1)).all()  # a single model's answers do not change
    np.testing.assert_allclose(after, torch.softmax(z / temperature, dim=1).numpy(), atol=1e-6)


def test_ensemble_logits_are_averaged_after_the_softmax() -> None:
    logits = torch.tensor([[[2.0, 0.0]], [[0.0, 4.0]]])  # two members, one row
    mean = (torch.softmax(logits[0] / 2, 1) + torch.softmax(logits[1] / 2, 1)) / 2
    torch.testing.assert_close(calibration.calibrated_probs(logits, 2.0), mean)


def test_reliability_diagram_is_a_png(tmp_path: Path) -> None:
    probs = np.array([[0.2, 0.8], [0.7, 0.3], [0.05, 0.95]])
    calibration.reliability_diagram({"a": probs}, np.array([1, 1, 1]), tmp_path / "r.png", "t")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

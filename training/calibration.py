"""Temperature scaling (Guo et al. 2017): one scalar T, fitted on validation by LBFGS on the negative log-likelihood,
divides the logits before the softmax. It leaves a single model's argmax (its accuracy) alone and makes its scores
mean what they say; the sentiment model carries T in its exported graph, so `probs` come out calibrated.

    python -m training.calibration artifacts/sentiment [--plot=reliability.png]

measures an artifact as it is (its log-probabilities stand in for logits: the same up to a constant per row, exact
for a single model) on its own validation sentences, and reports what a temperature would give. It writes nothing
into the artifact.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

BINS = 10


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: |accuracy - mean confidence| per equal-width confidence bin, weighted by the
    bin's share of the rows. Confidence is the top label's probability."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def calibrated_probs(logits: Tensor, temperature: float | Tensor) -> Tensor:
    """[members, rows, labels] (or [rows, labels]) logits -> the members' mean of softmax(logits / T)."""
    if logits.dim() == 2:
        logits = logits.unsqueeze(0)
    return torch.softmax(logits / temperature, dim=-1).mean(0)


def fit_temperature(logits: Tensor, labels: Tensor, steps: int = 100) -> float:
    """The T > 0 (fitted as log T) that minimises the validation NLL of `calibrated_probs(logits, T)`."""
    logits, labels = logits.detach().double(), labels.long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        probs = calibrated_probs(logits, log_t.exp())
        loss = -torch.log(probs[torch.arange(len(labels)), labels] + 1e-12).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def calibrate(logits: Tensor, labels: np.ndarray, seed: int = 0) -> tuple[float, dict[str, Any], np.ndarray]:
    """Fit T on all validation rows; returns T, the metrics (ECE before and after, the NLLs, and a cross-fitted ECE:
    each half scored with the T fitted on the other half, an honest figure for rows T was not fitted on) and the
    calibrated probabilities."""
    gold = torch.as_tensor(labels)
    temperature = fit_temperature(logits, gold)
    before = calibrated_probs(logits.double(), 1.0).numpy()
    after = calibrated_probs(logits.double(), temperature).numpy()
    halves = np.array_split(np.random.default_rng(seed).permutation(len(labels)), 2)
    crossed = np.zeros_like(after)
    for fit_on, score_on in ((halves[0], halves[1]), (halves[1], halves[0])):
        t = fit_temperature(logits[..., fit_on, :], gold[fit_on])
        crossed[score_on] = calibrated_probs(logits[..., score_on, :].double(), t).numpy()

    def nll(p: np.ndarray) -> float:
        return float(-np.log(p[np.arange(len(labels)), labels] + 1e-12).mean())

    metrics = {
        "temperature": round(temperature, 4),
        "valid_ece_before": round(ece(before, labels), 4),
        "valid_ece_after": round(ece(after, labels), 4),
        "valid_ece_after_crossfit": round(ece(crossed, labels), 4),
        "valid_nll_before": round(nll(before), 4),
        "valid_nll_after": round(nll(after), 4),
        "valid_mean_confidence_before": round(float(before.max(1).mean()), 4),
        "valid_mean_confidence_after": round(float(after.max(1).mean()), 4),
        "ece_bins": BINS,
    }
    return temperature, metrics, after


def reliability_diagram(curves: dict[str, np.ndarray], labels: np.ndarray, path: Path, title: str) -> None:
    """Accuracy against mean confidence per bin for each set of probabilities, with the diagonal and bin counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    edges = np.linspace(0.0, 1.0, BINS + 1)
    left.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for (name, probs), color in zip(curves.items(), ("tab:red", "tab:blue", "tab:green"), strict=False):
        confidence, correct = probs.max(1), probs.argmax(1) == labels
        index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, BINS - 1)
        used = [b for b in range(BINS) if (index == b).any()]
        xs = [confidence[index == b].mean() for b in used]
        ys = [correct[index == b].mean() for b in used]
        left.plot(xs, ys, marker="o", color=color, label=f"{name} (ECE {ece(probs, labels):.3f})")
        right.hist(confidence, bins=edges, histtype="step", color=color, label=name)
    left.set_xlabel("mean confidence in bin")
    left.set_ylabel("accuracy in bin")
    left.set_xlim(0.45, 1.0)
    left.set_ylim(0.0, 1.0)
    left.legend(fontsize=8)
    right.set_xlim(0.45, 1.0)
    right.set_xlabel("confidence")
    right.set_ylabel("validation rows")
    right.set_yscale("log")
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def card_section(metrics: dict[str, Any], plot_file: str) -> str:
    return (
        f"A temperature T = {metrics['temperature']:.3f} was fitted on the validation sentences (LBFGS on the "
        "negative log-likelihood) and folded into the exported graph: `probs` = softmax(logits / T). Expected "
        f"calibration error ({metrics['ece_bins']} equal-width bins) on those sentences: "
        f"{metrics['valid_ece_before']:.4f} before, {metrics['valid_ece_after']:.4f} after "
        f"({metrics['valid_ece_after_crossfit']:.4f} when each half is scored with the T fitted on the other half); "
        f"mean confidence {metrics['valid_mean_confidence_before']:.3f} -> {metrics['valid_mean_confidence_after']:.3f}"
        f". The ECE after is measured on the rows T was fitted on: the cross-fitted figure is the honest one.\n\n"
        f"![reliability diagram]({plot_file})"
    )


def main(argv: list[str] | None = None) -> None:
    from rnntext.manifest import Manifest
    from training.data import read_labeled_tsv, sst_sentence_split
    from training.evaluate import artifact_sentiment_probs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path, help="sentiment artifact directory")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/sst2/train.tsv"), help="SST-2 train.tsv")
    parser.add_argument("--plot", type=Path, default=None, help="write a reliability diagram PNG here")
    args = parser.parse_args(argv)
    manifest = Manifest.read(args.artifact)
    config = manifest.training["config"]
    rows = read_labeled_tsv(args.data)[: config.get("max_rows")]
    _, valid = sst_sentence_split(rows, config["valid_fraction"], config["seed"])
    labels = np.array([r.label for r in valid])
    probs = artifact_sentiment_probs(args.artifact, [r.text for r in valid], int(manifest.encoder["max_tokens"]))
    temperature, metrics, after = calibrate(torch.from_numpy(np.log(probs.astype(np.float64) + 1e-12)), labels)
    metrics["valid_accuracy"] = round(100 * float((probs.argmax(1) == labels).mean()), 2)
    if args.plot:
        curves = {"as committed": probs.astype(np.float64), f"T = {temperature:.2f}": after}
        reliability_diagram(curves, labels, args.plot, manifest.model_id)
    print(json.dumps({"model": manifest.model_id, "valid_sentences": len(labels), **metrics}, indent=1))


if __name__ == "__main__":
    main()

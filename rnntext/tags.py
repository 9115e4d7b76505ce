"""BIO tag schemes, entity spans, constrained decoding and conlleval-style entity scores (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class Span(NamedTuple):
    label: str
    start: int  # index of the first token
    end: int  # index after the last token


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 starts an entity with I- unless it directly follows one of the same type; IOB2 always uses B-."""
    out: list[str] = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            prev = out[i - 1] if i else "O"
            if prev == "O" or prev[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


def spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans of an IOB2 sequence; a stray I- opens a new entity, as conlleval counts it."""
    found: list[Span] = []
    label, start = None, 0
    for i, tag in enumerate([*tags, "O"]):
        kind, _, typ = tag.partition("-")
        continues = kind == "I" and typ == label
        if label is not None and not continues:
            found.append(Span(label, start, i))
            label = None
        if kind in ("B", "I") and not continues:
            label, start = typ, i
    return found


def allowed_transitions(tags: Sequence[str]) -> npt.NDArray[np.bool_]:
    """allowed[i, j]: may tag j follow tag i? I-X only after B-X or I-X. Row/column `len(tags)` is the start."""
    n = len(tags)
    allowed = np.ones((n + 1, n), dtype=bool)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            for i in range(n + 1):
                prev = tags[i] if i < n else "O"
                allowed[i, j] = prev[2:] == tag[2:] and prev[:2] in ("B-", "I-")
    return allowed


def constrained_decode(log_probs: npt.NDArray[np.floating], allowed: npt.NDArray[np.bool_]) -> list[int]:
    """Viterbi over per-token tag log-probabilities, forbidding invalid BIO transitions (e.g. O -> I-PER)."""
    steps, n = log_probs.shape
    if steps == 0:
        return []
    penalty = np.where(allowed, 0.0, -np.inf)
    score = log_probs[0] + penalty[n]
    back = np.zeros((steps, n), dtype=np.int64)
    for t in range(1, steps):
        candidates = score[:, None] + penalty[:n]
        back[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[t]
    best = [int(score.argmax())]
    for t in range(steps - 1, 0, -1):
        best.append(int(back[t, best[-1]]))
    return best[::-1]


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, dict[str, float]]:
    """Exact-match entity precision, recall and F1 (in %), overall and per type, as conlleval computes them."""
    counts: dict[str, list[int]] = {}  # label -> [true positives, predicted, gold]
    for g_tags, p_tags in zip(gold, predicted, strict=True):
        g, p = set(spans(g_tags)), set(spans(p_tags))
        for label in {s.label for s in g | p}:
            c = counts.setdefault(label, [0, 0, 0])
            c[0] += len({s for s in g & p if s.label == label})
            c[1] += sum(s.label == label for s in p)
            c[2] += sum(s.label == label for s in g)
    counts["overall"] = [sum(c[k] for c in counts.values()) for k in range(3)]
    return {label: _prf(*c) for label, c in sorted(counts.items())}


def _prf(true_pos: int, predicted: int, gold: int) -> dict[str, float]:
    precision = 100.0 * true_pos / predicted if predicted else 0.0
    recall = 100.0 * true_pos / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": float(gold)}

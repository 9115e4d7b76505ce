"""A behaviour suite for the sentiment model in the spirit of CheckList (Ribeiro et al. 2020), torch-free.

    python -m training.behaviour artifacts/sentiment [--json]

Small generated cases in five groups, each with what a reader expects:
- `vocabulary` (minimum functionality): "a wonderful film ." is positive, "a dull film ." negative;
- negation (MFT), two groups: `negated_negative` "the film is not bad ." is positive, `negated_positive` "the film
  is not wonderful ." negative;
- `contrast` (MFT): the clause after "but" decides: "fine acting , but a dull plot ." is negative;
- `intensifier` (directional): "very wonderful" keeps the label and its score does not fall by more than 0.1;
- `neutral_filler` (invariance): a neutral sentence before or after a clear review leaves its label alone.

The cases are fixed by a seed, so pass rates are comparable from model to model; they run through onnxruntime on
the artifact's own vocabulary and encoder, exactly as served.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnntext.manifest import CARD_FILE, Manifest
from training.evaluate import artifact_sentiment_probs

POSITIVE = ["good", "great", "wonderful", "excellent", "brilliant", "funny", "moving", "charming", "gripping"]
POSITIVE += ["delightful", "beautiful", "smart", "superb", "enjoyable", "fresh", "touching"]
NEGATIVE = ["bad", "terrible", "awful", "dull", "boring", "stupid", "tedious", "bland", "lame", "weak"]
NEGATIVE += ["mediocre", "clumsy", "predictable", "pointless", "annoying", "lifeless"]
NOUNS = ["film", "movie", "story", "plot", "script", "cast", "performance", "ending", "acting", "dialogue"]
INTENSIFIERS = ["very", "really", "truly", "incredibly", "extremely", "remarkably"]
NEUTRAL = [
    "i watched it on a tuesday .",
    "it runs about two hours .",
    "the film was shot in canada .",
    "i saw it with my brother .",
    "it opens in theaters this week .",
    "the director also wrote the script .",
    "there is a scene in a kitchen .",
]
NEGATION_TEMPLATES = [
    "the {noun} is not {adj} .",
    "this {noun} was not {adj} at all .",
    "not a {adj} {noun} .",
    "i did n't think the {noun} was {adj} .",
    "the {noun} is never {adj} .",
]
CONTRAST_TEMPLATES = [
    "{adj1} {noun1} , but a {adj2} {noun2} .",
    "the {noun1} is {adj1} , but the {noun2} is {adj2} .",
    "a {adj1} {noun1} , but the {noun2} is so {adj2} .",
]
PLAIN_TEMPLATES = ["a {adj} {noun} .", "the {noun} is {adj} .", "what a {adj} {noun} !"]
DROP_TOLERANCE = 0.1  # intensifier cases: the expected label's score may fall by this much at most
LABELS = ("negative", "positive")


@dataclass(frozen=True)
class Case:
    group: str
    text: str
    expected: int  # the label a reader expects
    base: str | None = None  # directional and invariance cases: the text the case is compared with


def _fill(templates: list[str], rng: random.Random, count: int, **choices: list[str]) -> list[dict[str, str]]:
    """`count` distinct (template, filling) combinations drawn without replacement."""
    keys = list(choices)
    combos = list(itertools.product(range(len(templates)), *(range(len(choices[k])) for k in keys)))
    picked = rng.sample(combos, min(count, len(combos)))
    return [
        {"template": templates[c[0]], **{k: choices[k][i] for k, i in zip(keys, c[1:], strict=True)}} for c in picked
    ]


def build_suite(seed: int = 14, per_group: int = 80) -> list[Case]:
    """About `per_group` cases per group (half each way; negation `per_group` / 2 per direction), fixed by `seed`."""
    rng = random.Random(seed)
    half = per_group // 2
    cases: list[Case] = []
    for adjs, label in ((POSITIVE, 1), (NEGATIVE, 0)):
        for f in _fill(PLAIN_TEMPLATES, rng, half, adj=adjs, noun=NOUNS):
            cases.append(Case("vocabulary", f["template"].format(**f), label))
    for adjs, label, group in ((POSITIVE, 0, "negated_positive"), (NEGATIVE, 1, "negated_negative")):
        for f in _fill(NEGATION_TEMPLATES, rng, half, adj=adjs, noun=NOUNS):  # "not good" is negative
            cases.append(Case(group, f["template"].format(**f), label))
    for first, second, label in ((POSITIVE, NEGATIVE, 0), (NEGATIVE, POSITIVE, 1)):
        for f in _fill(CONTRAST_TEMPLATES, rng, half, adj1=first, noun1=NOUNS, adj2=second, noun2=NOUNS):
            if f["noun1"] != f["noun2"]:
                text = f["template"].format(**f)
                cases.append(Case("contrast", text[0].lower() + text[1:], label))
    for adjs, label in ((POSITIVE, 1), (NEGATIVE, 0)):
        for f in _fill(["the {noun} is {adj} ."], rng, half, adj=adjs, noun=NOUNS, very=INTENSIFIERS):
            base = f"the {f['noun']} is {f['adj']} ."
            cases.append(Case("intensifier", f"the {f['noun']} is {f['very']} {f['adj']} .", label, base))
    for adjs, label in ((POSITIVE, 1), (NEGATIVE, 0)):
        for f in _fill(PLAIN_TEMPLATES, rng, half, adj=adjs, noun=NOUNS, filler=NEUTRAL):
            base = f["template"].format(**f)
            text = f"{f['filler']} {base}" if rng.random() < 0.5 else f"{base} {f['filler']}"
            cases.append(Case("neutral_filler", text, label, base))
    return cases


def passes(case: Case, probs: np.ndarray, base_probs: np.ndarray | None) -> bool:
    """Vocabulary, negation and contrast: the expected label. Intensifier: that, and its score falls by at most
    `DROP_TOLERANCE` from the plain sentence's. Neutral filler: the same label as the review without the filler."""
    label = int(probs.argmax())
    if case.group == "neutral_filler":
        assert base_probs is not None
        return label == int(base_probs.argmax())
    if case.group == "intensifier":
        assert base_probs is not None
        return label == case.expected and probs[case.expected] >= base_probs[case.expected] - DROP_TOLERANCE
    return label == case.expected


Scorer = Callable[[list[str]], np.ndarray]


def run_suite(score: Scorer, cases: list[Case] | None = None) -> dict[str, dict[str, float]]:
    """Pass rates per group (percent, with counts) and overall; `score` maps texts to label probabilities."""
    cases = cases if cases is not None else build_suite()
    texts = sorted({c.text for c in cases} | {c.base for c in cases if c.base})
    probs = dict(zip(texts, score(texts), strict=True))
    results: dict[str, list[bool]] = {}
    for case in cases:
        ok = passes(case, probs[case.text], probs[case.base] if case.base else None)
        results.setdefault(case.group, []).append(ok)
    report = {g: {"pass_rate": round(100 * float(np.mean(r)), 1), "cases": len(r)} for g, r in results.items()}
    everything = [ok for r in results.values() for ok in r]
    report["overall"] = {"pass_rate": round(100 * float(np.mean(everything)), 1), "cases": len(everything)}
    return report


def failures(score: Scorer, group: str, limit: int = 5) -> list[str]:
    """A few failing cases of one group, for a model card or a log."""
    cases = [c for c in build_suite() if c.group == group]
    texts = sorted({c.text for c in cases} | {c.base for c in cases if c.base})
    probs = dict(zip(texts, score(texts), strict=True))
    bad = [c for c in cases if not passes(c, probs[c.text], probs[c.base] if c.base else None)]
    return [f'"{c.text}": expected {LABELS[c.expected]}, got {probs[c.text][1]:.2f} positive' for c in bad[:limit]]


def artifact_scorer(directory: Path) -> Scorer:
    max_tokens = int(Manifest.read(directory).encoder["max_tokens"])
    return lambda texts: artifact_sentiment_probs(directory, texts, max_tokens)


Report = dict[str, dict[str, float]]
SECTION_TITLE = "Behaviour"  # the model card's section


def previous_report(directory: Path) -> tuple[str, Report] | None:
    """The suite on the sentiment artifact about to be replaced (the "before" column of a model card), if any."""
    try:
        manifest = Manifest.read(directory)
    except (FileNotFoundError, ValueError):
        return None
    if manifest.task != "sentiment":
        return None
    return manifest.model_id, run_suite(artifact_scorer(directory))


def card_section(report: Report, score: Scorer, before: tuple[str, Report] | None = None) -> str:
    if before:
        name, old = before
        rows = [f"| group | cases | {name} (before) | this model |", "| --- | ---: | ---: | ---: |"]
        rows += [
            f"| {g} | {r['cases']:.0f} | {old[g]['pass_rate']:.1f} % | {r['pass_rate']:.1f} % |"
            if g in old
            else f"| {g} | {r['cases']:.0f} | - | {r['pass_rate']:.1f} % |"
            for g, r in report.items()
        ]
    else:
        rows = ["| group | cases | pass rate |", "| --- | ---: | ---: |"]
        rows += [f"| {g} | {r['cases']:.0f} | {r['pass_rate']:.1f} % |" for g, r in report.items()]
    examples = [
        f"- {line}" for g in ("negated_negative", "negated_positive", "contrast") for line in failures(score, g, 2)
    ]
    return (
        "CheckList-style cases generated by `training/behaviour.py` (`python -m training.behaviour <artifact>`): "
        "vocabulary, negation, contrast (the clause after *but* decides), intensifiers (label kept, score not "
        f"down by more than {DROP_TOLERANCE}) and neutral filler (label unchanged).\n\n"
        + "\n".join(rows)
        + ("\n\nSome failures:\n" + "\n".join(examples) if examples else "")
    )


def rewrite_card_section(card: Path, section: str) -> None:
    """Replace the card's Behaviour section (up to the next heading), as training writes it. For a model trained
    elsewhere than the folder it now replaces, whose card could not name the model before it."""
    text, heading = card.read_text(), f"## {SECTION_TITLE}\n"
    start = text.index(heading) + len(heading)
    end = text.find("\n## ", start)
    card.write_text(text[:start] + section + ("\n" + text[end:] if end >= 0 else "\n"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path, help="sentiment artifact directory")
    parser.add_argument("--failures", type=int, default=0, help="also print N failing cases per group")
    parser.add_argument(
        "--card-before", type=Path, default=None,
        help="rewrite the artifact's card section with this replaced artifact's rates beside its own",
    )  # fmt: skip
    args = parser.parse_args(argv)
    score = artifact_scorer(args.artifact)
    report = run_suite(score)
    print(json.dumps(report, indent=1))
    if args.card_before:
        before = previous_report(args.card_before)
        if before is None:
            parser.error(f"{args.card_before}: not a sentiment artifact")
        rewrite_card_section(args.artifact / CARD_FILE, card_section(report, score, before))
    for group in (g for g in report if g != "overall" and args.failures):
        for line in failures(score, group, args.failures):
            print(f"{group}: {line}")


if __name__ == "__main__":
    main()

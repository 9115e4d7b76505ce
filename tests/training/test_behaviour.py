"""The behaviour suite (training/behaviour.py): its cases, its rules, and a floor under the committed model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from rnntext.manifest import Manifest
from training import behaviour

REPO = Path(__file__).resolve().parents[2]

# Pass rates of the committed artifacts/sentiment (sentiment-sst2@1.3.0), measured with
#   python -m training.behaviour artifacts/sentiment
# A new model may raise them (then raise these floors); it may not lower them. 1.2.1, served before it, passed no
# negated negative ("not bad") and 88.3 % overall.
FLOORS = {
    "vocabulary": 100.0,
    "negated_positive": 100.0,
    "negated_negative": 57.5,
    "contrast": 97.3,
    "intensifier": 100.0,
    "neutral_filler": 100.0,
    "overall": 95.2,
}


def test_suite_is_fixed_and_a_few_hundred_cases() -> None:
    cases = behaviour.build_suite()
    assert cases == behaviour.build_suite()  # the same cases every time: pass rates compare across models
    assert 300 <= len(cases) <= 600
    assert len({c.text for c in cases}) == len(cases)
    groups = {c.group for c in cases}
    assert groups == set(FLOORS) - {"overall"}
    for group in groups - {"negated_positive", "negated_negative"}:
        labels = [c.expected for c in cases if c.group == group]
        assert 0.4 < np.mean(labels) < 0.6, group  # both directions in every group
    assert {c.expected for c in cases if c.group == "negated_negative"} == {1}  # "not bad" is positive
    assert any("is not bad ." in c.text for c in cases)


def test_rules_on_a_scripted_scorer() -> None:
    neutral = behaviour.Case("neutral_filler", "i saw it . a dull film .", 0, base="a dull film .")
    intense = behaviour.Case("intensifier", "the plot is very dull .", 0, base="the plot is dull .")
    assert behaviour.passes(neutral, np.array([0.4, 0.6]), np.array([0.3, 0.7]))  # same label as the base: pass
    assert not behaviour.passes(neutral, np.array([0.6, 0.4]), np.array([0.3, 0.7]))
    assert behaviour.passes(intense, np.array([0.85, 0.15]), np.array([0.9, 0.1]))  # fell 0.05: within tolerance
    assert not behaviour.passes(intense, np.array([0.7, 0.3]), np.array([0.9, 0.1]))  # fell 0.2
    always_positive = behaviour.run_suite(lambda texts: np.tile([0.1, 0.9], (len(texts), 1)))
    assert always_positive["neutral_filler"]["pass_rate"] == 100.0  # invariance alone is not sentiment
    assert 45 < always_positive["vocabulary"]["pass_rate"] < 55


def test_suite_needs_no_torch() -> None:
    code = "import sys, training.behaviour; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_committed_model_keeps_its_pass_rates() -> None:
    report = behaviour.run_suite(behaviour.artifact_scorer(REPO / "artifacts" / "sentiment"))
    low = {g: (report[g]["pass_rate"], floor) for g, floor in FLOORS.items() if report[g]["pass_rate"] < floor}
    assert not low, f"behaviour pass rates (now, floor) dropped: {low}"


def test_card_shows_the_replaced_model_beside_the_new_one() -> None:
    committed = REPO / "artifacts" / "sentiment"
    card = (committed / "MODEL_CARD.md").read_text()
    assert "| group | cases | sentiment-sst2@1.2.1 (before) | this model |" in card  # the model it replaced
    assert "| negated_negative | 40 | 0.0 % | 57.5 % |" in card
    before = behaviour.previous_report(committed)  # what the next model's card will compare against
    assert before is not None and before[0] == "sentiment-sst2@1.3.0"
    section = behaviour.card_section(before[1], behaviour.artifact_scorer(committed), before)
    assert "| sentiment-sst2@1.3.0 (before) | this model |" in section
    assert "| negated_negative | 40 | 57.5 % | 57.5 % |" in section
    assert behaviour.previous_report(REPO / "artifacts" / "ner") is None  # another task: no before column


def test_card_before_rewrites_only_the_behaviour_section(tmp_path: Path) -> None:
    """A model trained in another folder gets the replaced model's column afterwards; the rest of its card stays."""
    committed, copy = REPO / "artifacts" / "sentiment", tmp_path / "sentiment"
    shutil.copytree(committed, copy)
    card = (copy / "MODEL_CARD.md").read_text()
    behaviour.main([str(copy), f"--card-before={committed}"])
    rewritten = (copy / "MODEL_CARD.md").read_text()
    model_id = Manifest.read(committed).model_id
    assert f"| group | cases | {model_id} (before) | this model |" in rewritten
    head, tail = card.split("## Behaviour\n")[0], card.split("## Behaviour\n")[1].split("\n## ", 1)[1]
    assert rewritten.startswith(head + "## Behaviour\n") and rewritten.endswith("\n## " + tail)

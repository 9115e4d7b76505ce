"""The committed artifacts, scored through onnxruntime as served, reproduce the metrics their manifests claim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import evaluate

REPO = Path(__file__).resolve().parents[2]


def run_evaluate(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, float]:
    evaluate.main(list(args))
    return json.loads(capsys.readouterr().out)


def manifest(task: str) -> dict:  # type: ignore[type-arg]
    path = REPO / "artifacts" / task / "manifest.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the committed artifacts are part of the project")
    return json.loads(path.read_text())


def test_ner_manifest_f1_reproduces_for_every_casing_and_raw_text(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through onnxruntime and the manifest's CRF scores, as served: what training measured in torch."""
    claimed = manifest("ner")["metrics"]
    got = run_evaluate(capsys, str(REPO / "artifacts" / "ner"), str(data_dir / "conll2003" / "valid.txt"))
    assert got["f1_given"] == pytest.approx(claimed["valid_f1"], abs=0.01)
    for variant in ("lower", "upper", "text"):
        assert got[f"f1_{variant}"] == pytest.approx(claimed[f"valid_f1_{variant}"], abs=0.01), variant
    for variant, by_type in claimed["valid_variant_scores"].items():
        for label in set(by_type) - {"overall"}:  # every entity type of every input, raw text included
            assert got[f"f1_{variant}_{label}"] == pytest.approx(by_type[label]["f1"], abs=0.01), (variant, label)


def test_sentiment_manifest_accuracy_reproduces_on_its_validation_rows(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SST-2 sentences and IMDb reviews held out by the artifact's run, drawn again from its manifest and scored
    through onnxruntime: what training measured in torch (one review in 2,500 is 0.04)."""
    claimed = manifest("sentiment")["metrics"]
    got = run_evaluate(
        capsys, str(REPO / "artifacts" / "sentiment"), str(data_dir / "sst2" / "train.tsv"), "--valid",
        f"--imdb={data_dir / 'imdb' / 'train.tsv'}",
    )  # fmt: skip
    assert (
        got["valid_examples"] == claimed["valid_sentences"]
        and got["valid_imdb_examples"] == claimed["valid_imdb_reviews"]
    )
    assert got["valid_accuracy"] == pytest.approx(claimed["valid_accuracy"], abs=0.01)
    assert got["valid_imdb_accuracy"] == pytest.approx(claimed["valid_imdb_accuracy"], abs=0.05)


def test_charlm_manifest_loss_reproduces(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = manifest("charlm")
    got = run_evaluate(
        capsys, str(REPO / "artifacts" / "charlm"), str(data_dir / "tinyshakespeare" / "train.txt"), "--tail=0.1"
    )
    assert got["chars"] == m["metrics"]["valid_chars"]
    assert got["loss"] == pytest.approx(m["metrics"]["valid_loss"], abs=2e-3)


def test_an_ensemble_of_a_tagger_with_itself_scores_as_the_tagger(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ensemble averages log-probabilities and CRF scores: two copies of one tagger decode as that tagger. A
    member with other tags is refused, not averaged."""
    sentences = (data_dir / "conll2003" / "valid.txt").read_text().split("\n\n")[:400]
    data = tmp_path / "valid-slice.txt"
    data.write_text("\n\n".join(sentences) + "\n")
    ner = str(REPO / "artifacts" / "ner")
    alone = run_evaluate(capsys, ner, str(data))
    paired = run_evaluate(capsys, ner, str(data), "--ensemble", ner)
    assert paired.pop("model") == alone.pop("model") + " + " + ner
    assert paired == alone and alone["f1_given"] > 50
    with pytest.raises(SystemExit):
        evaluate.main([ner, str(data), "--ensemble", str(REPO / "artifacts" / "sentiment")])

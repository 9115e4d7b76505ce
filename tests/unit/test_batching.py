"""Padding and unbatching with the committed models: a request answered inside a padded batch gets exactly the
answer it gets alone (the models take `lengths`, so padding changes nothing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.runtime import OnnxModel
from service.schemas import NerRequest, SentimentRequest
from service.tasks import ner, sentiment
from service.tasks.ner import NerModel
from service.tasks.sentiment import SentimentModel

TEXTS = ["a gripping , funny film", "bad", "not good at all , a boring and awful movie with no story", "ok 😀"]


@pytest.fixture(scope="module")
def sentiment_model(artifacts: Path) -> SentimentModel:
    return SentimentModel(OnnxModel.load(artifacts / "sentiment", device="cpu"))


@pytest.fixture(scope="module")
def ner_model(artifacts: Path) -> NerModel:
    return NerModel(OnnxModel.load(artifacts / "ner", device="cpu"))


def sentiment_answers(model: SentimentModel, requests: list[SentimentRequest]) -> list[dict[str, object]]:
    batch = model.batch([model.encode_request(r) for r in requests])
    outputs = sentiment.unbatch(model.predict(batch), batch)
    return [sentiment.response(o, model.labels, "m").model_dump() for o in outputs]


def test_sentiment_batch_equals_alone(sentiment_model: SentimentModel) -> None:
    requests = [SentimentRequest(text=t) for t in TEXTS] + [SentimentRequest(texts=TEXTS[:2])]
    together = sentiment_answers(sentiment_model, requests)
    alone = [sentiment_answers(sentiment_model, [r])[0] for r in requests]
    for a, b in zip(together, alone, strict=True):
        assert a.keys() == b.keys()
        if "results" in a:
            a, b = a["results"][0], b["results"][0]  # type: ignore[index]
        assert a["label"] == b["label"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)
    assert set(together[-1]) == {"results", "model"} and len(together[-1]["results"]) == 2  # type: ignore[arg-type]


def test_sentiment_unbatch_splits_by_request() -> None:
    probs = np.arange(10, dtype=np.float32).reshape(5, 2)
    batch = sentiment.SentimentBatch(np.zeros((5, 1), np.int64), np.ones(5, np.int64), [1, 3, 1], [True, False, True])
    parts = sentiment.unbatch(probs, batch)
    assert [p.probs.shape[0] for p in parts] == [1, 3, 1] and [p.single for p in parts] == [True, False, True]
    assert parts[2].probs.tolist() == [[8.0, 9.0]]


def ner_answers(model: NerModel, requests: list[NerRequest]) -> list[dict[str, object]]:
    batch = model.batch([model.encode_request(r) for r in requests])
    outputs = ner.unbatch(model.predict(batch), batch, model.decoder)
    return [ner.annotate(o, model.tags, "m").model_dump() for o in outputs]


def test_ner_batch_equals_alone_and_offsets_point_into_the_text(ner_model: NerModel) -> None:
    requests = [
        NerRequest(text="EU rejects German call to boycott British lamb ."),
        NerRequest(text="Peter Blackburn"),
        NerRequest(tokens=["Japan", "began", "the", "defence", "of", "their", "Asian", "Cup", "title"]),
        NerRequest(text="😀 Zürich  and\tSão Paulo"),
    ]
    together = ner_answers(ner_model, requests)
    alone = [ner_answers(ner_model, [r])[0] for r in requests]
    for request, a, b in zip(requests, together, alone, strict=True):
        assert [t["tag"] for t in a["tokens"]] == [t["tag"] for t in b["tokens"]]  # type: ignore[attr-defined]
        text = request.text if request.text is not None else " ".join(request.tokens or [])
        for entity in a["entities"]:  # type: ignore[attr-defined]
            assert text[entity["start"] : entity["end"]] == entity["text"]
            assert 0 < entity["score"] <= 1
    assert [t["text"] for t in together[2]["tokens"]] == requests[2].tokens  # type: ignore[index]

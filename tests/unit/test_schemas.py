"""service.schemas: each bad field is a ValidationError whose location names that field."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from rnntext.encoders import SentimentEncoder
from service import schemas
from service.limits import DEFAULT_LIMITS, Limits
from service.schemas import GenerateRequest, NerRequest, SentimentRequest


def error_locs(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    return [tuple(e["loc"]) for e in err.value.errors()]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": DEFAULT_LIMITS.max_new_tokens + 1}, "max_new_tokens"),
        ({"seed": -1}, "seed"),
        ({"stop": ["a"] * (DEFAULT_LIMITS.max_stop_sequences + 1)}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "x" * (DEFAULT_LIMITS.max_text_chars + 1)}, "prompt"),
        ({"unknown": 1}, "unknown"),
        ({"prompt": "a\ud800"}, "prompt"),
        ({"stop": ["\udfff"]}, "stop"),
    ],
)
def test_generate_bad_field(data: dict[str, Any], field: str) -> None:
    assert any(loc[0] == field for loc in error_locs(GenerateRequest, data))


def test_generate_defaults_allow_an_empty_prompt() -> None:
    request = GenerateRequest()
    assert request.prompt == "" and request.stop == [] and not request.stream


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "  \n\t"}, "text"),
        ({"texts": []}, "texts"),
        ({"texts": ["ok", " "]}, "texts"),
        ({"texts": ["a"] * (DEFAULT_LIMITS.max_batch_texts + 1)}, "texts"),
        ({"text": "a", "extra": 1}, "extra"),
        ({"text": "ok \ud83d"}, "text"),
    ],
)
def test_sentiment_bad_field(data: dict[str, Any], field: str) -> None:
    assert any(loc[0] == field for loc in error_locs(SentimentRequest, data))


@pytest.mark.parametrize("data", [{}, {"text": "a", "texts": ["b"]}])
def test_sentiment_needs_exactly_one_of_text_or_texts(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of `text` or `texts`"):
        SentimentRequest.model_validate(data)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"tokens": []}, "tokens"),
        ({"tokens": ["two words"]}, "tokens"),
        ({"tokens": [""]}, "tokens"),
        ({"tokens": ["a"] * (DEFAULT_LIMITS.max_ner_tokens + 1)}, "tokens"),
        ({"text": " "}, "text"),
        ({"tokens": ["\ud800"]}, "tokens"),
    ],
)
def test_ner_bad_field(data: dict[str, Any], field: str) -> None:
    assert any(loc[0] == field for loc in error_locs(NerRequest, data))


def test_ner_exactly_one_and_token_limit() -> None:
    with pytest.raises(ValidationError, match="exactly one of `text` or `tokens`"):
        NerRequest.model_validate({"text": "a", "tokens": ["a"]})
    with pytest.raises(ValidationError, match=f"more than {DEFAULT_LIMITS.max_ner_tokens} tokens"):
        NerRequest(text="a " * (DEFAULT_LIMITS.max_ner_tokens + 1))


def test_limited_models_enforce_configured_limits_as_field_constraints() -> None:
    models = schemas.limited_models(
        Limits(max_new_tokens=5, max_batch_texts=2, max_ner_tokens=3, max_stop_sequences=1, max_text_chars=20)
    )
    assert any(loc[0] == "max_new_tokens" for loc in error_locs(models.generate, {"max_new_tokens": 6}))
    assert any(loc[0] == "stop" for loc in error_locs(models.generate, {"stop": ["a", "b"]}))
    assert any(loc[0] == "texts" for loc in error_locs(models.sentiment, {"texts": ["a", "b", "c"]}))
    assert any(loc[0] == "text" for loc in error_locs(models.sentiment, {"text": "x" * 21}))
    assert any(loc[0] == "tokens" for loc in error_locs(models.ner, {"tokens": ["a"] * 4}))
    with pytest.raises(ValidationError, match="more than 3 tokens"):
        models.ner(text="a b c d")
    # the rules of the plain classes still hold, and their defaults are untouched
    assert any(loc[0] == "temperature" for loc in error_locs(models.generate, {"temperature": -1}))
    with pytest.raises(ValidationError, match="exactly one"):
        models.sentiment()
    assert NerRequest(text="a b c d").text == "a b c d"
    schema = models.generate.model_json_schema()["properties"]
    assert schema["max_new_tokens"]["maximum"] == 5 and schema["stop"]["maxItems"] == 1
    assert schema["max_new_tokens"]["description"] == GenerateRequest.model_fields["max_new_tokens"].description


def test_to_base_gives_the_plain_picklable_class() -> None:
    models = schemas.limited_models(Limits(max_batch_texts=3))
    request = models.sentiment(texts=["good", "bad"])
    plain = schemas.to_base(request, SentimentRequest)
    assert type(plain) is SentimentRequest and plain.all_texts() == ["good", "bad"]
    assert pickle.loads(pickle.dumps(plain)) == plain
    assert schemas.to_base(models.generate(prompt="x"), GenerateRequest).stop == []


@pytest.mark.parametrize("text", ["<br />", "<br/> <BR>", "a<br />b", "ok"])
def test_sentiment_text_without_readable_words_is_rejected(text: str) -> None:
    """Whatever the encoder strips (markup), a text left without words is a 422, never a length-0 sequence."""
    readable = bool(SentimentEncoder.words(text))
    for model in (SentimentRequest, schemas.limited_models(Limits()).sentiment):
        if readable:
            assert model(text=text).text == text
        else:
            assert error_locs(model, {"texts": ["fine", text]}) == [("texts", 1)]

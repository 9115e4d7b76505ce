"""service.schemas: each bad field is a ValidationError whose location names that field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from service import schemas
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
        ({"max_new_tokens": schemas.MAX_NEW_TOKENS + 1}, "max_new_tokens"),
        ({"seed": -1}, "seed"),
        ({"stop": ["a"] * (schemas.MAX_STOP_SEQUENCES + 1)}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "x" * (schemas.MAX_TEXT_CHARS + 1)}, "prompt"),
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
        ({"texts": ["a"] * (schemas.MAX_BATCH_TEXTS + 1)}, "texts"),
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
        ({"tokens": ["a"] * (schemas.MAX_NER_TOKENS + 1)}, "tokens"),
        ({"text": " "}, "text"),
        ({"tokens": ["\ud800"]}, "tokens"),
    ],
)
def test_ner_bad_field(data: dict[str, Any], field: str) -> None:
    assert any(loc[0] == field for loc in error_locs(NerRequest, data))


def test_ner_exactly_one_and_token_limit() -> None:
    with pytest.raises(ValidationError, match="exactly one of `text` or `tokens`"):
        NerRequest.model_validate({"text": "a", "tokens": ["a"]})
    with pytest.raises(ValidationError, match=f"more than {schemas.MAX_NER_TOKENS} tokens"):
        NerRequest(text="a " * (schemas.MAX_NER_TOKENS + 1))

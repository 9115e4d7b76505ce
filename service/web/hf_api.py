"""The Hugging Face Inference API's task shapes for our two classifiers, so that
`InferenceClient(model="http://host:8000/hf/text-classification").text_classification(...)` and
`.token_classification(...)` work unchanged: `POST /hf/text-classification` answers `[[{"label", "score"}, ...]]`
(labels by score, highest first; a list of texts gets one list each) and `POST /hf/token-classification` answers
`[{"entity_group", "score", "word", "start", "end"}, ...]` (the `aggregation_strategy="simple"` shape). The request
is checked with the same (limited) models as /sentiment and /ner and goes to the same workers."""

# No `from __future__ import annotations`: FastAPI must see the request models as live objects.
import json
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from service.litserve_ext.client import Workers
from service.schemas import NerRequest, RequestModels, SentimentRequest, to_base
from service.web.generations import validated


class TextClassificationParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top_k: int | None = Field(default=None, ge=1, description="the k labels with the highest scores")
    function_to_apply: Literal["softmax"] | None = Field(default=None, description="the model's scores are softmax")


class TextClassificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: str | list[str]
    parameters: TextClassificationParameters = Field(default_factory=TextClassificationParameters)


class TokenClassificationParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aggregation_strategy: Literal["simple"] | None = Field(default=None, description="entities are always spans")
    ignore_labels: list[str] | None = None


class TokenClassificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: str
    parameters: TokenClassificationParameters = Field(default_factory=TokenClassificationParameters)


class LabelScore(BaseModel):
    label: str
    score: float


class EntityGroup(BaseModel):
    entity_group: str
    score: float
    word: str
    start: int
    end: int


def _ranked(scores: dict[str, float], top_k: int | None) -> list[dict[str, Any]]:
    ranked = sorted(scores.items(), key=lambda item: -item[1])[:top_k]
    return [{"label": label, "score": score} for label, score in ranked]


def add_hf_routes(
    app: FastAPI, workers: Workers, models: RequestModels, alive: Callable[[str], Callable[[], bool] | None]
) -> None:
    async def text_classification(body: TextClassificationRequest) -> list[list[LabelScore]]:
        one = isinstance(body.inputs, str)
        fields = {"text": body.inputs} if one else {"texts": body.inputs}
        request = validated(models.sentiment, fields, {"text": "inputs", "texts": "inputs"})
        answer = json.loads(await workers.answer("/sentiment", to_base(request, SentimentRequest), alive("sentiment")))
        results = [answer] if one else answer["results"]
        top_k = body.parameters.top_k
        return [[LabelScore.model_validate(s) for s in _ranked(r["scores"], top_k)] for r in results]

    async def token_classification(body: TokenClassificationRequest) -> list[EntityGroup]:
        request = validated(models.ner, {"text": body.inputs}, {"text": "inputs"})
        answer = json.loads(await workers.answer("/ner", to_base(request, NerRequest), alive("ner")))
        ignored = set(body.parameters.ignore_labels or [])
        return [
            EntityGroup(entity_group=e["label"], score=e["score"], word=e["text"], start=e["start"], end=e["end"])
            for e in answer["entities"]
            if e["label"] not in ignored
        ]

    app.add_api_route(
        "/hf/text-classification",
        text_classification,
        methods=["POST"],
        summary="Hugging Face text-classification: sentiment of `inputs` as [[{label, score}, ...]]",
    )
    app.add_api_route(
        "/hf/token-classification",
        token_classification,
        methods=["POST"],
        summary="Hugging Face token-classification: the entities in `inputs` as [{entity_group, score, word, ...}]",
    )

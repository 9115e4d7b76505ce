"""Request and response bodies of the HTTP contract (docs/architecture.md). Every constraint lives in the schema, so
a bad request is a 422 that names the field before any work is queued, and /openapi.json shows the limits.

The request limits are settings (`service.limits.Limits`). A constraint that depends on one is written once, as
`Limited(MaxLen, "max_text_chars")` in the field's annotation: the classes below carry the default limits, and
`limited_models(limits)` derives subclasses that carry the configured ones, which the routes validate with. Workers
receive the plain classes (see `to_base`): request objects travel to the spawned worker processes pickled by class
reference, so they must be of a class that every process can import.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from annotated_types import Ge, GroupedMetadata, Le, MaxLen, MinLen
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, create_model, model_validator

from rnntext.encoders import SentimentEncoder
from rnntext.tokenize import tokenize
from service.limits import DEFAULT_LIMITS, Limits


@dataclass(frozen=True)
class Limited(GroupedMetadata):
    """A constraint set by one request limit: `Limited(MaxLen, "max_text_chars")` is `MaxLen(limits.max_text_chars)`,
    at the default limits unless `limited_models` substituted the configured ones."""

    constraint: Callable[[int], Any]  # MaxLen or Le
    limit: str  # a field of Limits
    limits: Limits = DEFAULT_LIMITS

    def __iter__(self) -> Iterator[Any]:
        yield self.constraint(getattr(self.limits, self.limit))


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain at least one non-whitespace character")
    return value


def _has_words(value: str) -> str:
    if not SentimentEncoder.has_words(value):  # e.g. only markup the encoder strips: the model must never see length 0
        raise ValueError("contains no words the sentiment model can read")
    return value


# Lone surrogates ("\ud800" escapes) are already refused by pydantic's str (type string_unicode).
Text = Annotated[str, MinLen(1), Limited(MaxLen, "max_text_chars"), AfterValidator(_not_blank)]
Word = Annotated[str, MinLen(1), Limited(MaxLen, "max_token_chars"), Field(pattern=r"^\S+$")]
SentimentText = Annotated[Text, AfterValidator(_has_words)]
StopText = Annotated[str, MinLen(1), Limited(MaxLen, "max_stop_chars")]
Prompt = Annotated[str, Limited(MaxLen, "max_text_chars")]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    limits: ClassVar[Limits] = DEFAULT_LIMITS  # the limits this class's constraints were computed from


class GenerateRequest(Request):
    prompt: Prompt = Field(default="", description="may be empty: generation from the start state")
    max_new_tokens: Annotated[int, Ge(1), Limited(Le, "max_new_tokens")] = Field(
        default=200, description="characters to generate at most"
    )
    temperature: float = Field(default=0.8, ge=0, le=10, description="0 means greedy")
    top_k: int | None = Field(default=None, ge=1, description="sample among the k most likely characters")
    top_p: float | None = Field(default=None, gt=0, le=1, description="sample within this probability mass (nucleus)")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="same seed and parameters, same text")
    stop: Annotated[list[StopText], Limited(MaxLen, "max_stop_sequences")] = Field(
        default_factory=list, description="generation ends before any of these"
    )
    stream: bool = Field(default=False, description="answer as Server-Sent Events while generating")
    logprobs: bool = Field(
        default=False, description="also answer `tokens`: each generated character with its log-probability"
    )
    # Set by the HTTP side, not by clients: the worker's key into the shared cancellation flags (service.web.routes).
    _request_id: str | None = PrivateAttr(default=None)


FinishReason = Literal["length", "stop"]


class GeneratedToken(BaseModel):
    id: int = Field(description="the character's id in the char LM's vocabulary")
    text: str
    logprob: float = Field(description="the model's log-probability of it (before temperature, top-k, top-p)")


class GenerateResponse(BaseModel):
    text: str = Field(description="the continuation only, without the prompt or the stop text")
    finish_reason: FinishReason
    generated_tokens: int = Field(description="characters the model produced, a matched stop text included")
    model: str
    tokens: list[GeneratedToken] | None = Field(default=None, description="with `logprobs`: the text's characters")
    unknown_chars: list[str] | None = Field(
        default=None, description="the prompt's characters outside the model's alphabet (read as unknown); if any"
    )


class GeneratePiece(BaseModel):
    """One Server-Sent Event of a streamed generation; the last one has `finish_reason` set."""

    text: str
    finish_reason: FinishReason | None = None
    generated_tokens: int | None = None
    model: str | None = None
    tokens: list[GeneratedToken] | None = None
    unknown_chars: list[str] | None = None


class SentimentRequest(Request):
    text: SentimentText | None = Field(default=None, description="one text")
    texts: Annotated[list[SentimentText], MinLen(1), Limited(MaxLen, "max_batch_texts")] | None = Field(
        default=None, description="or several"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SentimentRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of `text` or `texts`")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class SentimentResult(BaseModel):
    label: str
    score: float = Field(description="probability of `label`")
    scores: dict[str, float]


class SentimentResponse(SentimentResult):
    model: str


class SentimentBatchResponse(BaseModel):
    results: list[SentimentResult]
    model: str


class NerRequest(Request):
    text: Text | None = Field(default=None, description="raw text, tokenized by the server")
    tokens: Annotated[list[Word], MinLen(1), Limited(MaxLen, "max_ner_tokens")] | None = Field(
        default=None, description="or pre-tokenized words (no whitespace inside)"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> NerRequest:
        if (self.text is None) == (self.tokens is None):
            raise ValueError("give exactly one of `text` or `tokens`")
        limit = type(self).limits.max_ner_tokens
        count = len(tokenize(self.text)) if self.text is not None else 1
        if count > limit:
            raise ValueError(f"`text` has more than {limit} tokens")
        if count == 0:  # cannot happen for non-blank text; the model must never see a zero-length sequence
            raise ValueError("`text` has no tokens")
        return self


class NerEntity(BaseModel):
    text: str
    label: str
    start: int = Field(description="character offset of the first character")
    end: int = Field(description="character offset after the last character")
    score: float = Field(description="mean probability of the entity's token tags")


class NerToken(BaseModel):
    text: str
    start: int
    end: int
    tag: str


class NerResponse(BaseModel):
    entities: list[NerEntity]
    tokens: list[NerToken]
    model: str


@dataclass(frozen=True)
class RequestModels:
    generate: type[GenerateRequest]
    sentiment: type[SentimentRequest]
    ner: type[NerRequest]


def limited_models(limits: Limits) -> RequestModels:
    """Subclasses of the request models whose constraints are computed from `limits` (each a Field constraint, so
    /openapi.json shows them and a violation is a 422 naming the field)."""
    return RequestModels(
        _derive(GenerateRequest, limits), _derive(SentimentRequest, limits), _derive(NerRequest, limits)
    )


M = TypeVar("M", bound=BaseModel)


def _at(annotation: Any, limits: Limits) -> Any:
    """`annotation` with every `Limited` in it (nested ones included) computed from `limits`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        inner, *metadata = args
        new = [replace(m, limits=limits) if isinstance(m, Limited) else m for m in metadata]
        return Annotated[(_at(inner, limits), *new)]
    if origin in (typing.Union, UnionType):
        return typing.Union[tuple(_at(a, limits) for a in args)]  # noqa: UP007  # built from a tuple
    if origin is list:
        return list[_at(args[0], limits)]  # type: ignore[misc]
    return annotation


def _derive(base: type[M], limits: Limits) -> type[M]:
    """`base` with its limited fields redeclared at `limits`: same default and description."""
    hints = typing.get_type_hints(base, include_extras=True)
    overrides: dict[str, Any] = {}
    for name, info in base.model_fields.items():
        annotation = _at(hints[name], limits)
        if annotation == hints[name]:
            continue
        default: dict[str, Any] = (
            {"default_factory": info.default_factory} if info.default_factory else {"default": info.default}
        )
        overrides[name] = (annotation, Field(**default, description=info.description))
    derived = create_model(base.__name__, __base__=base, __module__=base.__module__, **overrides)
    derived.limits = limits  # type: ignore[attr-defined]
    return derived


def to_base(request: M, base: type[M]) -> M:
    """The same request as an instance of the plain (importable) class, without validating again."""
    return base.model_construct(_fields_set=request.model_fields_set, **dict(request))

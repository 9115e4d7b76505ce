"""Request and response bodies of the HTTP contract (DESIGN.md). Every constraint lives in a Field, so a bad
request is a 422 that names the field before any work is queued, and /openapi.json shows the limits.

The classes below carry the default limits. The limits are settings (`RNNSERVE_MAX_NEW_TOKENS`, ...):
`limited_models(limits)` derives subclasses whose Fields carry the configured limits, and the routes validate with
those. Workers receive the plain classes (see `to_base`): request objects travel to the spawned worker processes
pickled by class reference, so they must be of a class that every process can import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, create_model, model_validator
from pydantic.fields import FieldInfo

from rnntext.encoders import SentimentEncoder
from rnntext.tokenize import tokenize

MAX_TEXT_CHARS = 10_000  # /sentiment and /ner texts, /generate prompts
MAX_BATCH_TEXTS = 64  # /sentiment {"texts": [...]}
MAX_NER_TOKENS = 512  # words in one /ner request
MAX_TOKEN_CHARS = 4096  # one pre-tokenized /ner token: room for a real URL (browsers keep 2,000+ characters)
MAX_NEW_TOKENS = 1000  # characters one /generate call may produce
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 64


@dataclass(frozen=True)
class Limits:
    max_text_chars: int = MAX_TEXT_CHARS
    max_batch_texts: int = MAX_BATCH_TEXTS
    max_ner_tokens: int = MAX_NER_TOKENS
    max_token_chars: int = MAX_TOKEN_CHARS
    max_new_tokens: int = MAX_NEW_TOKENS
    max_stop_sequences: int = MAX_STOP_SEQUENCES
    max_stop_chars: int = MAX_STOP_CHARS


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain at least one non-whitespace character")
    return value


def _has_words(value: str) -> str:
    if not SentimentEncoder.has_words(value):  # e.g. only markup the encoder strips: the model must never see length 0
        raise ValueError("contains no words the sentiment model can read")
    return value


# Lone surrogates ("\ud800" escapes) are already refused by pydantic's str (type string_unicode).
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(_not_blank)]
Word = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_CHARS, pattern=r"^\S+$")]
SentimentText = Annotated[Text, AfterValidator(_has_words)]
StopText = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]
Prompt = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class GenerateRequest(Request):
    prompt: Prompt = Field(default="", description="may be empty: generation from the start state")
    max_new_tokens: int = Field(default=200, ge=1, le=MAX_NEW_TOKENS, description="characters to generate at most")
    temperature: float = Field(default=0.8, ge=0, le=10, description="0 means greedy")
    top_k: int | None = Field(default=None, ge=1, description="sample among the k most likely characters")
    top_p: float | None = Field(default=None, gt=0, le=1, description="sample within this probability mass (nucleus)")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="same seed and parameters, same text")
    stop: list[StopText] = Field(
        default_factory=list, max_length=MAX_STOP_SEQUENCES, description="generation ends before any of these"
    )
    stream: bool = Field(default=False, description="answer as Server-Sent Events while generating")
    # Set by the HTTP side, not by clients: the worker's key into the shared cancellation flags (service.routes).
    _request_id: str | None = PrivateAttr(default=None)


FinishReason = Literal["length", "stop"]


class GenerateResponse(BaseModel):
    text: str = Field(description="the continuation only, without the prompt or the stop text")
    finish_reason: FinishReason
    generated_tokens: int = Field(description="characters the model produced, a matched stop text included")
    model: str


class GeneratePiece(BaseModel):
    """One Server-Sent Event of a streamed generation; the last one has `finish_reason` set."""

    text: str
    finish_reason: FinishReason | None = None
    generated_tokens: int | None = None
    model: str | None = None


class SentimentRequest(Request):
    text: SentimentText | None = Field(default=None, description="one text")
    texts: list[SentimentText] | None = Field(
        default=None, min_length=1, max_length=MAX_BATCH_TEXTS, description="or several"
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
    max_tokens: ClassVar[int] = MAX_NER_TOKENS

    text: Text | None = Field(default=None, description="raw text, tokenized by the server")
    tokens: list[Word] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_NER_TOKENS,
        description="or pre-tokenized words (no whitespace inside)",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> NerRequest:
        if (self.text is None) == (self.tokens is None):
            raise ValueError("give exactly one of `text` or `tokens`")
        limit = type(self).max_tokens
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
    """Subclasses of the request models whose Fields carry `limits` (each also a Field constraint, so /openapi.json
    shows them and a violation is a 422 naming the field)."""
    text = Annotated[str, Field(min_length=1, max_length=limits.max_text_chars), AfterValidator(_not_blank)]
    word = Annotated[str, Field(min_length=1, max_length=limits.max_token_chars, pattern=r"^\S+$")]
    sentiment_text = Annotated[text, AfterValidator(_has_words)]
    stop = Annotated[str, Field(min_length=1, max_length=limits.max_stop_chars)]
    generate = _derive(
        GenerateRequest,
        prompt=(Annotated[str, Field(max_length=limits.max_text_chars)], {}),
        max_new_tokens=(int, {"ge": 1, "le": limits.max_new_tokens}),
        stop=(list[stop], {"max_length": limits.max_stop_sequences}),
    )
    sentiment = _derive(
        SentimentRequest,
        text=(sentiment_text | None, {}),
        texts=(list[sentiment_text] | None, {"min_length": 1, "max_length": limits.max_batch_texts}),
    )
    ner = _derive(
        NerRequest,
        text=(text | None, {}),
        tokens=(list[word] | None, {"min_length": 1, "max_length": limits.max_ner_tokens}),
    )
    ner.max_tokens = limits.max_ner_tokens
    return RequestModels(generate, sentiment, ner)


M = TypeVar("M", bound=BaseModel)


def _derive(base: type[M], **fields: tuple[Any, dict[str, Any]]) -> type[M]:
    """`base` with some fields redeclared: new type and constraints, same default and description."""
    overrides: dict[str, Any] = {}
    for name, (annotation, constraints) in fields.items():
        info: FieldInfo = base.model_fields[name]
        default: dict[str, Any] = (
            {"default_factory": info.default_factory} if info.default_factory else {"default": info.default}
        )
        overrides[name] = (annotation, Field(**default, description=info.description, **constraints))
    return create_model(base.__name__, __base__=base, __module__=base.__module__, **overrides)


def to_base(request: M, base: type[M]) -> M:
    """The same request as an instance of the plain (importable) class, without validating again."""
    return base.model_construct(_fields_set=request.model_fields_set, **dict(request))

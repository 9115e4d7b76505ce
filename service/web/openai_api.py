"""OpenAI's completions protocol on our own generation path: `POST /v1/completions` (JSON, or Server-Sent Events with
`stream: true`) and `GET /v1/models`, so that the `openai` SDK (and what is built on it) works unchanged with
`base_url=http://host:8000/v1`. The request becomes a `GenerateRequest`, checked at the configured limits, and goes
the way a /generate request goes (`service.web.generations`): the same seed and parameters give the same text.

Not LitServe's `OpenAISpec`: it serves chat only, drops `seed`, `top_k` and `stream_options`, always answers
`finish_reason: "stop"` and loses errors in the middle of a stream. Parameters a character model cannot honour
(`n` > 1, penalties, `logit_bias`, `suffix`, `best_of` > 1) are refused with a 400 naming them. A list of prompts
(at most `max_batch_texts`, not streamed) gets a choice per prompt, generated side by side.

`logprobs` gives each generated character's log-probability under the model (`tokens`, `token_logprobs`,
`text_offset` into the choice's text); `top_logprobs` stays null (the alternatives are not reported), and the
prompt's own log-probabilities (`echo` with `logprobs`, what lm-evaluation-harness scores with) are refused with a
400: the prefill keeps only the last position's logits.
"""

# No `from __future__ import annotations`: FastAPI must see the request model as a live object.
import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.schemas import GeneratePiece, GenerateRequest, RequestModels, to_base
from service.web.errors import openai_error
from service.web.generations import Generations, event_stream, sse, validated

# Our field -> OpenAI's, for the messages of the limits checked on the translated request.
NAMES = {"prompt": "prompt", "max_new_tokens": "max_tokens", "stop": "stop", "seed": "seed", "top_k": "top_k"}


def _only(allowed: Any, what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is not None and value != allowed:
            raise ValueError(f"is not supported by this server: {what}")
        return value

    return check


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str = Field(description="the id that GET /v1/models lists (or `charlm`)", examples=["charlm"])
    prompt: str | list[str] = Field(description="a string, or a list of them (a choice each; one when streaming)")
    max_tokens: int | None = Field(default=16, description="characters to generate at most (OpenAI's default: 16)")
    temperature: float | None = Field(default=1.0, ge=0, le=10, description="0 means greedy")
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1, description="not OpenAI's: the SDK sends it in `extra_body`")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="same seed and parameters, same text")
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    echo: bool | None = Field(default=False, description="return the prompt before the completion")
    n: Annotated[int | None, AfterValidator(_only(1, "one completion per request (`n` 1)"))] = 1
    best_of: Annotated[int | None, AfterValidator(_only(1, "`best_of` 1"))] = None
    logprobs: int | None = Field(default=None, ge=0, le=5, description="each character's log-probability")
    presence_penalty: Annotated[float | None, AfterValidator(_only(0, "no penalties (0)"))] = None
    frequency_penalty: Annotated[float | None, AfterValidator(_only(0, "no penalties (0)"))] = None
    logit_bias: Annotated[dict[str, float] | None, AfterValidator(_only({}, "no `logit_bias`"))] = None
    suffix: Annotated[str | None, AfterValidator(_only(None, "no `suffix`"))] = None
    user: str | None = Field(default=None, description="accepted and ignored")


class Logprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: None = None
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: Literal["length", "stop"] | None
    logprobs: Logprobs | None = None


class Usage(BaseModel):
    prompt_tokens: int = Field(description="characters of the prompt (one token per character)")
    completion_tokens: int
    total_tokens: int


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "rnnserve"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def _refused(status: int, message: str, param: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(openai_error(status, message, param, code), status_code=status)


def add_openai_routes(
    app: FastAPI, generations: Generations, models: RequestModels, model_id: str, created: int = 0
) -> None:
    """The routes, serving the char LM `model_id` (accepted also as `charlm` and by its name without version)."""
    names = {model_id, model_id.split("@")[0], "charlm"}
    card = ModelCard(id=model_id, created=created)

    async def list_models() -> ModelList:
        return ModelList(data=[card])

    async def completions(body: CompletionRequest, http: Request) -> Response:
        if body.model not in names:
            message = f"model `{body.model}` does not exist; this server serves `{model_id}`"
            return _refused(404, message, "model", "model_not_found")
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        limit = models.generate.limits.max_batch_texts
        if not 1 <= len(prompts) <= (1 if body.stream else limit):
            allowed = "one prompt when streaming" if body.stream else f"1 to {limit} prompts"
            return _refused(400, f"`prompt`: send {allowed}, not {len(prompts)}", "prompt")
        if body.echo and body.logprobs is not None:
            return _refused(400, "the prompt's log-probabilities are not available: no `echo` with `logprobs`", "echo")
        stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        fields = {
            "max_new_tokens": body.max_tokens if body.max_tokens is not None else 16,
            "temperature": body.temperature if body.temperature is not None else 1.0,
            "top_k": body.top_k,
            "top_p": body.top_p,
            "seed": body.seed,
            "stop": stops,
            "stream": bool(body.stream),
            "logprobs": body.logprobs is not None,
        }
        checked = [validated(models.generate, fields | {"prompt": p}, NAMES) for p in prompts]
        requests = [to_base(r, GenerateRequest) for r in checked]
        answers = [Answer(model_id, len(p), p if body.echo else "", body.logprobs is not None) for p in prompts]
        if not body.stream:  # each prompt a generation of its own, stepped together by the worker
            wholes = await asyncio.gather(*(_whole(generations, r, http) for r in requests))
            pieces = [w for w in wholes if w is not None]
            if len(pieces) < len(wholes):
                return Response(status_code=499)
            return JSONResponse(whole(answers, pieces).model_dump())
        started = await generations.begin(requests[0], http)
        if started is None:
            return Response(status_code=499)
        first, rest = started
        answer = answers[0]
        usage = body.stream_options is not None and body.stream_options.include_usage
        return event_stream(sse(first, rest, lambda p: answer.events(p, usage), _stream_error, ["[DONE]"]))

    app.add_api_route("/v1/models", list_models, methods=["GET"], summary="OpenAI: the models served")
    app.add_api_route(
        "/v1/completions",
        completions,
        methods=["POST"],
        response_model=Completion,
        summary="OpenAI: complete a prompt (JSON, or Server-Sent Events with stream=true, then `data: [DONE]`)",
        responses={200: {"content": {"text/event-stream": {}}}},
    )


async def _whole(generations: Generations, request: GenerateRequest, http: Request) -> GeneratePiece | None:
    started = await generations.begin(request, http)
    if started is None:
        return None
    first, rest = started
    await rest.aclose()
    return first


def whole(answers: list["Answer"], pieces: list[GeneratePiece]) -> Completion:
    """One answer for several prompts: a choice each (`index` in prompt order), the usage summed."""
    pairs = list(zip(answers, pieces, strict=True))
    choices = [a.choice(p).model_copy(update={"index": i}) for i, (a, p) in enumerate(pairs)]
    usages = [a.usage(p) for a, p in pairs]
    usage = Usage(
        prompt_tokens=sum(u.prompt_tokens for u in usages),
        completion_tokens=sum(u.completion_tokens for u in usages),
        total_tokens=sum(u.total_tokens for u in usages),
    )
    first = answers[0]
    return Completion(id=first.id, created=first.created, model=first.model, choices=choices, usage=usage)


def _stream_error(err: HTTPException) -> dict[str, Any]:
    return openai_error(err.status_code, str(err.detail))


class Answer:
    """One completion in OpenAI's shape: the whole answer, or its stream chunks (same id and `created`)."""

    def __init__(self, model: str, prompt_tokens: int, echo: str, logprobs: bool) -> None:
        self.id, self.created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        self.model, self.prompt_tokens, self.pending = model, prompt_tokens, echo
        self.logprobs, self.offset = logprobs, 0  # characters of text sent so far

    def choice(self, piece: GeneratePiece) -> CompletionChoice:
        text, self.pending = self.pending + piece.text, ""
        choice = CompletionChoice(text=text, finish_reason=piece.finish_reason, logprobs=self._logprobs(piece))
        self.offset += len(text)
        return choice

    def chunk(self, piece: GeneratePiece, usage: bool) -> dict[str, Any]:
        answer = Completion(id=self.id, created=self.created, model=self.model, choices=[self.choice(piece)])
        if usage:
            answer.usage = self.usage(piece)
        return answer.model_dump()

    def _logprobs(self, piece: GeneratePiece) -> Logprobs | None:
        if not self.logprobs:
            return None
        tokens, offsets, at = piece.tokens or [], [], self.offset
        for token in tokens:
            offsets.append(at)
            at += len(token.text)
        texts, logprobs = [t.text for t in tokens], [t.logprob for t in tokens]
        return Logprobs(tokens=texts, token_logprobs=logprobs, text_offset=offsets)

    def usage(self, piece: GeneratePiece) -> Usage:
        made = piece.generated_tokens or 0
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=made, total_tokens=self.prompt_tokens + made)

    def events(self, piece: GeneratePiece, usage: bool) -> list[str]:
        """A piece's stream chunks: its text (`"usage": null` when usage was asked for), and after the last piece
        the usage chunk, whose `choices` are empty, as OpenAI sends it."""
        chunk = self.chunk(piece, usage=False)
        if not usage:
            del chunk["usage"]
        events = [json.dumps(chunk)]
        if usage and piece.finish_reason is not None:
            last = Completion(id=self.id, created=self.created, model=self.model, choices=[], usage=self.usage(piece))
            events.append(last.model_dump_json())
        return events

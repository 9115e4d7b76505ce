"""Text Generation Inference's protocol on our own generation path: `POST /` (TGI's compatibility route:
`{"inputs", "parameters", "stream"}` -> `[{"generated_text", "details"}]`, or TGI's token events when streaming) and
`POST /generate_stream`, so that `huggingface_hub.InferenceClient(model="http://host:8000").text_generation(...)`
works unchanged. The request becomes a `GenerateRequest`, checked at the configured limits, and goes the way a
/generate request goes (`service.web.generations`): the same seed and parameters give the same text.

TGI's meaning of the parameters is kept: without `do_sample`, `temperature`, `top_k` or `top_p` it decodes
greedily; a sampled request without a seed gets one chosen here, and `details.seed` reports it. A token is one
character. Parameters a character model cannot honour with a value other than their neutral one (penalties,
`typical_p`, `watermark`, `grammar`, `best_of`, `top_n_tokens`, `truncate`, `decoder_input_details`) are refused with
TGI's validation error.
"""

# No `from __future__ import annotations`: FastAPI must see the request models as live objects.
import json
import secrets
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from service.schemas import GeneratePiece, GenerateRequest, RequestModels, to_base
from service.web.errors import tgi_error
from service.web.generations import Generations, event_stream, sse, validated

DEFAULT_MAX_NEW_TOKENS = 100  # TGI's documented default
NAMES = {"prompt": "inputs", **{k: f"parameters.{k}" for k in ("max_new_tokens", "temperature", "top_k", "top_p")}}
NAMES |= {"seed": "parameters.seed", "stop": "parameters.stop"}
NEUTRAL: dict[str, Any] = {  # accepted only at these values (None always)
    "repetition_penalty": 1.0,
    "frequency_penalty": 0.0,
    "typical_p": 1.0,
    "best_of": 1,
    "watermark": False,
    "decoder_input_details": False,
    "top_n_tokens": 0,
    "truncate": None,
    "grammar": None,
    "adapter_id": None,
}


class TgiParameters(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    max_new_tokens: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    do_sample: bool = False
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)
    details: bool = False
    return_full_text: bool = False


class TgiRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    inputs: str
    parameters: TgiParameters = Field(default_factory=TgiParameters)
    stream: bool = False


class TgiToken(BaseModel):
    id: int
    text: str
    logprob: float
    special: bool = False


class TgiDetails(BaseModel):
    finish_reason: Literal["length", "stop_sequence", "eos_token"]
    generated_tokens: int
    seed: int | None = None
    prefill: list[TgiToken] = Field(default_factory=list)
    tokens: list[TgiToken] = Field(default_factory=list)


class TgiAnswer(BaseModel):
    generated_text: str
    details: TgiDetails | None = None


def _translate(request: TgiRequest, models: RequestModels) -> GenerateRequest:
    p = request.parameters
    refused = [k for k, v in (p.model_extra or {}).items() if k in NEUTRAL and v not in (None, NEUTRAL[k])]
    unknown = [k for k in (p.model_extra or {}) if k not in NEUTRAL]
    if refused or unknown:
        message = "not supported by this server (a character model; accepted only at its neutral value)"
        raise RequestValidationError(
            [{"type": "unsupported", "loc": ("body", "parameters", k), "msg": message} for k in refused + unknown]
        )
    sampled = p.do_sample or any(v is not None for v in (p.temperature, p.top_k, p.top_p))
    fields = {
        "prompt": request.inputs,
        "max_new_tokens": p.max_new_tokens if p.max_new_tokens is not None else DEFAULT_MAX_NEW_TOKENS,
        "temperature": (p.temperature if p.temperature is not None else 1.0) if sampled else 0.0,
        "top_k": p.top_k,
        "top_p": p.top_p,
        "seed": (p.seed if p.seed is not None else secrets.randbits(63)) if sampled else p.seed,
        "stop": p.stop,
        "stream": request.stream,
        "logprobs": request.stream or p.details,  # token events carry each token's logprob
    }
    return to_base(validated(models.generate, fields, NAMES), GenerateRequest)


def _finish(piece: GeneratePiece) -> Literal["length", "stop_sequence"]:
    return "stop_sequence" if piece.finish_reason == "stop" else "length"


def _tokens(piece: GeneratePiece) -> list[TgiToken]:
    return [TgiToken(id=t.id, text=t.text, logprob=t.logprob) for t in piece.tokens or []]


class TokenEvents:
    """A generation as TGI's stream: one event per token; the last one also carries `generated_text` and
    `details`, so each token's event is held until the next piece shows whether it was the last. A generation that
    released no text at all (a stop text at once) ends with an empty special token."""

    def __init__(self, request: GenerateRequest, full_text: bool) -> None:
        self.request, self.text = request, request.prompt if full_text else ""
        self.held: TgiToken | None = None
        self.index = 0

    def __call__(self, piece: GeneratePiece) -> list[str]:
        self.text += piece.text
        events = []
        for token in _tokens(piece):
            if self.held is not None:
                events.append(self._event(self.held))
            self.held = token
        if piece.finish_reason is not None:
            details: dict[str, Any] = {"finish_reason": _finish(piece), "generated_tokens": piece.generated_tokens or 0}
            details |= {"seed": self.request.seed, "input_length": len(self.request.prompt)}
            last = self.held or TgiToken(id=0, text="", logprob=0.0, special=True)
            events.append(self._event(last, {"generated_text": self.text, "details": details}))
        return events

    def _event(self, token: TgiToken, final: dict[str, Any] | None = None) -> str:
        self.index += 1
        event = {"index": self.index, "token": token.model_dump(), "generated_text": None, "details": None}
        return json.dumps(event | (final or {}))


def _stream_error(err: HTTPException) -> dict[str, Any]:
    return tgi_error(err.status_code, str(err.detail))


def add_tgi_routes(app: FastAPI, generations: Generations, models: RequestModels) -> None:
    async def answer(body: TgiRequest, http: Request, stream: bool) -> Response:
        request = _translate(body.model_copy(update={"stream": stream}), models)
        started = await generations.begin(request, http)
        if started is None:
            return Response(status_code=499)
        first, rest = started
        if stream:
            return event_stream(sse(first, rest, TokenEvents(request, body.parameters.return_full_text), _stream_error))
        await rest.aclose()
        text = (request.prompt if body.parameters.return_full_text else "") + first.text
        details = None
        if body.parameters.details:
            finish, made = _finish(first), first.generated_tokens or 0
            details = TgiDetails(finish_reason=finish, generated_tokens=made, seed=request.seed, tokens=_tokens(first))
        answer = TgiAnswer(generated_text=text, details=details)
        return JSONResponse([answer.model_dump(exclude={"details"} if details is None else None)])

    async def compat(body: TgiRequest, http: Request) -> Response:
        return await answer(body, http, body.stream)

    async def generate_stream(body: TgiRequest, http: Request) -> Response:
        return await answer(body, http, True)

    app.add_api_route(
        "/",
        compat,
        methods=["POST"],
        response_model=list[TgiAnswer],
        summary="TGI: generate (a list of one answer, or TGI's token events with stream=true)",
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    app.add_api_route(
        "/generate_stream",
        generate_stream,
        methods=["POST"],
        summary="TGI: generate as token events (Server-Sent Events)",
        responses={200: {"content": {"text/event-stream": {}}}},
    )

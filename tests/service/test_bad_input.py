"""Bad input over real HTTP, endpoint by endpoint: every case is a 4xx whose message names the field (and the
limit, where there is one) or a correct 200, never a 5xx; and after each, a valid request still gets its usual
answer (no crashed or stuck worker). Limits as the session server is configured (tests/service/conftest.py):
max_new_tokens 300, 8 texts, 2 stop strings; defaults otherwise (10,000 characters, 512 /ner tokens, 100
characters per token, 64 per stop string). Cases checked identically in test_endpoints.py are not repeated."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.schemas import GenerateResponse, NerResponse, SentimentBatchResponse, SentimentResponse
from tests.service.serving import Server

MAX_TEXT = 10_000

# One valid request per endpoint; its answer is taken once and must come back unchanged after every bad case.
PROBES: dict[str, dict[str, Any]] = {
    "/generate": {"prompt": "ROMEO:", "max_new_tokens": 8, "temperature": 0},
    "/sentiment": {"text": "a gripping, funny film"},
    "/ner": {"text": "EU rejects German call"},
}


@dataclass(frozen=True)
class Case:
    path: str
    body: Any  # a JSON value, or raw bytes sent as they are
    field: str | None = None  # None: must be a 200; else a 422 (or 4xx) naming this field
    limit: str | None = None  # the limit the message must state
    ok: bool = False  # either a correct 200 or a 422 naming `field` (inputs whose fate is the model's business)
    status: int = 422  # the 4xx expected when `field` is set


def long_words(n: int) -> str:
    return " ".join(["word"] * n)


CASES: dict[str, Case] = {
    # Lengths at and beyond the configured maximum.
    "sentiment-text-at-max": Case("/sentiment", {"text": "a" * (MAX_TEXT - 4) + " fun"}),
    "sentiment-text-over-max": Case("/sentiment", {"text": "a" * (MAX_TEXT + 1)}, "text", "10000"),
    "sentiment-texts-item-over-max": Case("/sentiment", {"texts": ["ok", "a" * (MAX_TEXT + 1)]}, "texts", "10000"),
    "sentiment-texts-at-max": Case("/sentiment", {"texts": ["good"] * 8}),
    "ner-text-over-max": Case("/ner", {"text": "a" * (MAX_TEXT + 1)}, "text", "10000"),
    "ner-text-512-tokens": Case("/ner", {"text": long_words(512)}),
    "ner-text-513-tokens": Case("/ner", {"text": long_words(513)}, "text", "512"),
    "ner-text-one-huge-token": Case("/ner", {"text": "x" * MAX_TEXT}),
    "ner-tokens-512": Case("/ner", {"tokens": ["word"] * 512}),
    "ner-tokens-513": Case("/ner", {"tokens": ["word"] * 513}, "tokens", "512"),
    "ner-token-url-2500-chars": Case("/ner", {"tokens": ["see", "https://t.co/" + "x" * 2487]}),
    "ner-token-4096-chars": Case("/ner", {"tokens": ["Paris", "x" * 4096]}),
    "ner-token-4097-chars": Case("/ner", {"tokens": ["Paris", "x" * 4097]}, "tokens", "4096"),
    "ner-token-empty": Case("/ner", {"tokens": ["EU", ""]}, "tokens"),
    "ner-token-nbsp": Case("/ner", {"tokens": ["EU\u00a0rejects"]}, "tokens"),
    "generate-prompt-at-max": Case("/generate", {"prompt": "a" * MAX_TEXT, "max_new_tokens": 3}),
    "generate-prompt-over-max": Case("/generate", {"prompt": "a" * (MAX_TEXT + 1)}, "prompt", "10000"),
    "generate-max-new-tokens-at-limit": Case("/generate", {"max_new_tokens": 300, "temperature": 0}),
    "generate-max-new-tokens-0": Case("/generate", {"max_new_tokens": 0}, "max_new_tokens", "1"),
    "generate-max-new-tokens-huge": Case("/generate", {"max_new_tokens": 10**30}, "max_new_tokens", "300"),
    # Out-of-range and awkward parameters.
    "generate-temperature-negative-small": Case("/generate", {"temperature": -1e-9}, "temperature", "0"),
    "generate-temperature-over-10": Case("/generate", {"temperature": 10.5}, "temperature", "10"),
    "generate-temperature-huge": Case("/generate", {"temperature": 1e308}, "temperature", "10"),
    "generate-temperature-infinity": Case("/generate", b'{"temperature": Infinity}', "temperature"),
    "generate-top-p-over-1": Case("/generate", {"top_p": 1.5}, "top_p", "1"),
    "generate-top-p-negative": Case("/generate", {"top_p": -0.1}, "top_p", "0"),
    "generate-top-p-1": Case("/generate", {"top_p": 1.0, "seed": 1, "max_new_tokens": 5}),
    "generate-top-p-tiny": Case("/generate", {"top_p": 1e-9, "seed": 1, "max_new_tokens": 5}),
    "generate-top-k-negative": Case("/generate", {"top_k": -1}, "top_k", "1"),
    "generate-top-k-1": Case("/generate", {"top_k": 1, "seed": 1, "max_new_tokens": 5}),
    "generate-top-k-over-vocabulary": Case("/generate", {"top_k": 10**6, "seed": 1, "max_new_tokens": 5}),
    "generate-seed-negative": Case("/generate", {"seed": -1}, "seed", "0"),
    "generate-seed-over-int64": Case("/generate", {"seed": 2**63}, "seed", "9223372036854775807"),
    "generate-seed-int64-max": Case("/generate", {"seed": 2**63 - 1, "max_new_tokens": 5}),
    "generate-stop-at-limits": Case("/generate", {"stop": ["x" * 64, "\n\n"], "max_new_tokens": 5}),
    "generate-stop-too-long": Case("/generate", {"stop": ["x" * 65]}, "stop", "64"),
    "generate-stop-empty-string": Case("/generate", {"stop": [""]}, "stop"),
    "generate-stop-not-a-list": Case("/generate", {"stop": "\n"}, "stop"),
    "generate-stop-outside-vocabulary": Case("/generate", {"stop": ["😀"], "max_new_tokens": 5}),
    # Wrong types and unknown fields.
    "generate-prompt-number": Case("/generate", {"prompt": 123}, "prompt"),
    "generate-prompt-null": Case("/generate", {"prompt": None}, "prompt"),
    "generate-max-new-tokens-float": Case("/generate", {"max_new_tokens": 10.5}, "max_new_tokens"),
    "generate-max-new-tokens-list": Case("/generate", {"max_new_tokens": [10]}, "max_new_tokens"),
    "generate-stream-object": Case("/generate", {"stream": {}}, "stream"),
    "sentiment-text-list": Case("/sentiment", {"text": ["good"]}, "text"),
    "sentiment-texts-string": Case("/sentiment", {"texts": "good"}, "texts"),
    "sentiment-texts-nested": Case("/sentiment", {"texts": [["good"]]}, "texts"),
    "sentiment-unknown-field": Case("/sentiment", {"text": "good", "lang": "en"}, "lang"),
    "ner-tokens-string": Case("/ner", {"tokens": "EU rejects"}, "tokens"),
    "ner-tokens-numbers": Case("/ner", {"tokens": [1, 2]}, "tokens"),
    "ner-unknown-field": Case("/ner", {"text": "EU", "aggregation": "simple"}, "aggregation"),
    "ner-text-and-tokens-null": Case("/ner", {"text": None, "tokens": None}, "exactly one of `text` or `tokens`"),
    # Bodies that are not the expected JSON object.
    "body-empty": Case("/sentiment", b"", "body"),
    "body-json-null": Case("/ner", b"null", "body"),
    "body-json-string": Case("/generate", b'"ROMEO"', "body"),
    "body-deeply-nested": Case(  # too deep for the JSON parser: FastAPI's 400, not a RecursionError's 500
        "/sentiment", b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "body", status=400
    ),
    "body-duplicate-keys": Case("/sentiment", b'{"text": "awful", "text": "a gripping, funny film"}'),
    # Characters: control, NUL, lone surrogates, RTL, zero-width, combining, emoji, outside every vocabulary.
    "sentiment-control-chars": Case("/sentiment", {"text": "\x01\x02 good \x1b[31m film\x7f"}),
    "ner-control-chars": Case("/ner", {"text": "\x01EU\x02 rejects\x1b German\x7f call"}),
    "generate-nul-prompt": Case("/generate", {"prompt": "\x00\x00ROMEO\x00", "max_new_tokens": 5}),
    "ner-nul-token": Case("/ner", {"tokens": ["EU\x00", "rejects"]}),
    "sentiment-lone-surrogate": Case("/sentiment", b'{"text": "good \\ud800 film"}', "text"),
    "sentiment-texts-lone-surrogate": Case("/sentiment", b'{"texts": ["good", "\\udfff"]}', "texts"),
    "ner-tokens-lone-surrogate": Case("/ner", b'{"tokens": ["EU", "\\ud800"]}', "tokens"),
    "generate-prompt-lone-surrogate": Case("/generate", b'{"prompt": "\\udc00ROMEO"}', "prompt"),
    "generate-stop-lone-surrogate": Case("/generate", b'{"stop": ["\\ud800"]}', "stop"),
    "generate-escaped-surrogate-pair": Case("/generate", b'{"prompt": "\\ud83d\\ude00", "max_new_tokens": 3}'),
    "sentiment-rtl-override": Case("/sentiment", {"text": "\u202egood film\u202c \u200f"}),
    "ner-rtl-hebrew-arabic": Case("/ner", {"text": "שלום עולם Paris مرحبا"}),
    "sentiment-zero-width-only": Case("/sentiment", {"text": "\u200b\u200c\u200d\ufeff"}, "text", ok=True),
    "ner-zero-width-only": Case("/ner", {"text": "\u200b\u200c\u200d\ufeff"}, "text", ok=True),
    "ner-zero-width-inside": Case("/ner", {"text": "Pe\u200bter Black\u200dburn visited Par\ufeffis"}),
    "ner-combining-marks": Case("/ner", {"text": "Zu\u0308rich and Jose\u0301 " + "e" + "\u0301" * 50}),
    "sentiment-combining-only": Case("/sentiment", {"text": "\u0301\u0301\u0301"}, "text", ok=True),
    "generate-combining-prompt": Case("/generate", {"prompt": "a\u0301\u0302\u0303", "max_new_tokens": 3}),
    "ner-emoji-tokens": Case("/ner", {"tokens": ["👩\u200d👩\u200d👧", "🇫🇷", "Paris", "😀"]}),
    "sentiment-emoji-zwj": Case("/sentiment", {"text": "👩\u200d👩\u200d👧 great 🇫🇷"}),
    "generate-emoji-prompt-and-stop": Case(
        "/generate", {"prompt": "🇫🇷👩\u200d👧", "stop": ["👍"], "max_new_tokens": 4}
    ),
    "ner-cjk-tokens": Case("/ner", {"tokens": ["北京", "Zürich", "Ελλάδα"]}),
    "sentiment-private-use-and-noncharacters": Case("/sentiment", {"text": "\ue000\uffff\U0010ffff film"}),
    "ner-private-use-and-noncharacters": Case("/ner", {"text": "\ue000 \uffff \U0010ffff Paris"}),
}


@pytest.fixture(scope="module")
def reference(client: httpx.Client) -> dict[str, Any]:
    answers = {}
    for path, body in PROBES.items():
        r = client.post(path, json=body)
        assert r.status_code == 200, r.text
        answers[path] = r.json()
    return answers


def post(client: httpx.Client, case: Case) -> httpx.Response:
    if isinstance(case.body, bytes):
        return client.post(case.path, content=case.body, headers={"content-type": "application/json"})
    return client.post(case.path, json=case.body)


def named(response: httpx.Response, field: str) -> str:
    """The 4xx detail, asserting that it names `field` (in a location or in a message)."""
    detail = response.json()["detail"]
    text = json.dumps(detail, ensure_ascii=False)
    assert field in text, f"{field!r} not named in {text}"
    return text


def check_answer(case: Case, body: dict[str, Any]) -> None:
    checks: dict[str, Callable[[dict[str, Any]], None]] = {
        "/generate": lambda b: check_generation(case.body, GenerateResponse.model_validate(b)),
        "/sentiment": lambda b: check_sentiment(case.body, b),
        "/ner": lambda b: check_ner(case.body, NerResponse.model_validate(b)),
    }
    checks[case.path](body)


def check_generation(request: Any, answer: GenerateResponse) -> None:
    wanted = request.get("max_new_tokens", 200) if isinstance(request, dict) else None
    if answer.finish_reason == "length" and wanted is not None:
        assert answer.generated_tokens == wanted and len(answer.text) == wanted
    for stop in request.get("stop", []) if isinstance(request, dict) else []:
        assert stop not in answer.text


def check_sentiment(request: Any, body: dict[str, Any]) -> None:
    results = SentimentBatchResponse.model_validate(body).results if "results" in body else [SentimentResponse(**body)]
    if isinstance(request, dict) and "texts" in request:
        assert len(results) == len(request["texts"])
    for result in results:
        assert result.label in ("negative", "positive") and result.score == max(result.scores.values())


def check_ner(request: Any, answer: NerResponse) -> None:
    if isinstance(request, dict) and "tokens" in request:
        text = " ".join(request["tokens"])
        assert [t.text for t in answer.tokens] == request["tokens"]
    elif isinstance(request, dict):
        text = request["text"]
    else:
        return
    assert answer.tokens, "a text with words has tokens"
    for span in [*answer.tokens, *answer.entities]:
        assert text[span.start : span.end] == span.text


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(server: Server, client: httpx.Client, reference: dict[str, Any], name: str) -> None:
    case = CASES[name]
    r = post(client, case)
    assert r.status_code < 500, f"{name}: {r.status_code} {r.text[:300]}\n{server.log_tail(20)}"
    if case.field is None or (case.ok and r.status_code == 200):
        assert r.status_code == 200, f"{name}: {r.text[:300]}"
        check_answer(case, r.json())
    else:
        assert r.status_code == case.status, f"{name}: {r.status_code} {r.text[:300]}"
        detail = named(r, case.field)
        if case.limit is not None:
            assert case.limit in detail, f"{name}: the limit {case.limit} is not stated in {detail}"
    after = client.post(case.path, json=PROBES[case.path])  # the worker is alive and answers as before
    assert after.status_code == 200 and after.json() == reference[case.path], name

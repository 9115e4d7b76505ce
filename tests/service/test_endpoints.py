"""The HTTP contract of DESIGN.md over real HTTP: field names and types, errors naming the field, limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service import schemas
from service.schemas import GenerateResponse, NerResponse, SentimentBatchResponse, SentimentResponse
from tests.service.serving import Server


def error_fields(response: httpx.Response) -> list[Any]:
    assert response.status_code == 422, response.text
    return [e["loc"][1] if len(e["loc"]) > 1 else e["msg"] for e in response.json()["detail"]]


def test_health_and_info(client: httpx.Client) -> None:
    assert client.get("/health").status_code == 200
    info = client.get("/info").json()
    assert {m["task"] for m in info["models"]} == {"charlm", "sentiment", "ner"}
    for model in info["models"]:
        assert {"name", "version", "sha256", "metrics"} <= model.keys() and len(model["sha256"]) == 64
    assert {w["task"] for w in info["workers"]} == {"charlm", "sentiment", "ner"}
    for worker in info["workers"]:
        assert worker["providers"] and worker["providers"][-1] == "CPUExecutionProvider"
        assert worker["torch_imported"] is False
    assert info["server"]["torch_imported"] is False


def test_generate_contract(client: httpx.Client) -> None:
    r = client.post("/generate", json={"prompt": "ROMEO:", "max_new_tokens": 25, "temperature": 0.8, "seed": 7})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = GenerateResponse.model_validate(r.json())
    assert set(r.json()) == {"text", "finish_reason", "generated_tokens", "model"}
    assert body.finish_reason == "length" and body.generated_tokens == 25 and len(body.text) == 25
    assert "@" in body.model


def test_generate_seed_is_deterministic_and_greedy_needs_no_seed(client: httpx.Client) -> None:
    request = {"prompt": "", "max_new_tokens": 40, "temperature": 1.0, "top_k": 20, "top_p": 0.9, "seed": 11}
    assert client.post("/generate", json=request).json() == client.post("/generate", json=request).json()
    greedy = {"prompt": "KING:", "max_new_tokens": 30, "temperature": 0}
    assert client.post("/generate", json=greedy).json() == client.post("/generate", json=greedy).json()


def test_generate_stop_string(client: httpx.Client) -> None:
    free = client.post("/generate", json={"prompt": "KING:", "max_new_tokens": 50, "temperature": 0}).json()["text"]
    stop = free[8:11]
    r = client.post("/generate", json={"prompt": "KING:", "max_new_tokens": 50, "temperature": 0, "stop": [stop]})
    body = r.json()
    assert body["finish_reason"] == "stop" and body["text"] == free[: free.index(stop)]
    assert stop not in body["text"]


def test_generate_streams_server_sent_events(client: httpx.Client) -> None:
    request = {"prompt": "ROMEO:", "max_new_tokens": 30, "temperature": 0, "stream": True}
    with client.stream("POST", "/generate", json=request) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
    pieces = [schemas.GeneratePiece.model_validate_json(e) for e in events]
    assert len(pieces) > 1 and all(p.finish_reason is None for p in pieces[:-1])
    assert pieces[-1].finish_reason == "length" and pieces[-1].generated_tokens == 30
    whole = client.post("/generate", json={**request, "stream": False}).json()
    assert "".join(p.text for p in pieces) == whole["text"]


def test_sentiment_contract(client: httpx.Client) -> None:
    r = client.post("/sentiment", json={"text": "a gripping, funny film"})
    assert r.status_code == 200
    body = SentimentResponse.model_validate(r.json())
    assert set(r.json()) == {"label", "score", "scores", "model"}
    assert body.label in ("negative", "positive") and set(body.scores) == {"negative", "positive"}
    assert body.score == max(body.scores.values()) and sum(body.scores.values()) == pytest.approx(1, abs=1e-4)
    many = SentimentBatchResponse.model_validate(client.post("/sentiment", json={"texts": ["good", "bad"]}).json())
    assert len(many.results) == 2


def test_ner_contract_text_and_tokens(client: httpx.Client) -> None:
    text = "EU rejects German call to boycott British lamb ."
    body = NerResponse.model_validate(client.post("/ner", json={"text": text}).json())
    assert [t.text for t in body.tokens] == text.split()
    for token in body.tokens:
        assert text[token.start : token.end] == token.text
    for entity in body.entities:
        assert text[entity.start : entity.end] == entity.text and entity.label in ("PER", "LOC", "ORG", "MISC")
    tokens = ["Peter", "Blackburn", "visited", "New", "York"]
    pre = NerResponse.model_validate(client.post("/ner", json={"tokens": tokens}).json())
    assert [t.text for t in pre.tokens] == tokens
    joined = " ".join(tokens)
    assert all(joined[e.start : e.end] == e.text for e in pre.entities)


@pytest.mark.parametrize(
    "text",
    [
        "barack obama visited paris and met angela merkel",
        "Barack Obama visited Paris and met Angela Merkel",
        "BARACK OBAMA VISITED PARIS AND MET ANGELA MERKEL",
    ],
)
def test_ner_finds_the_entities_in_any_casing(client: httpx.Client, text: str) -> None:
    body = NerResponse.model_validate(client.post("/ner", json={"text": text}).json())
    found = [(e.text.lower(), e.label) for e in body.entities]
    assert found == [("barack obama", "PER"), ("paris", "LOC"), ("angela merkel", "PER")]


def test_ner_keeps_urls_mentions_and_hashtags_whole(client: httpx.Client) -> None:
    url = "https://www.example.com/news/" + "a1-" * 700  # a real tweet's link can be this long
    text = f"@jane_doe loved #Paris with Angela Merkel, see {url}"
    body = NerResponse.model_validate(client.post("/ner", json={"text": text}).json())
    expected = ["@jane_doe", "loved", "#Paris", "with", "Angela", "Merkel", ",", "see", url]
    assert [t.text for t in body.tokens] == expected
    assert all(text[t.start : t.end] == t.text for t in body.tokens)
    assert ("Angela Merkel", "PER") in [(e.text, e.label) for e in body.entities]
    pre = client.post("/ner", json={"tokens": ["see", url]})
    assert pre.status_code == 200, pre.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/generate", {"temperature": -1}, "temperature"),
        ("/generate", {"top_p": 0}, "top_p"),
        ("/generate", {"top_k": 0}, "top_k"),
        ("/generate", {"max_new_tokens": 301}, "max_new_tokens"),  # RNNSERVE_MAX_NEW_TOKENS=300
        ("/generate", {"stop": ["a", "b", "c"]}, "stop"),  # RNNSERVE_MAX_STOP_SEQUENCES=2
        ("/sentiment", {"texts": ["a"] * 9}, "texts"),  # RNNSERVE_MAX_BATCH_TEXTS=8
        ("/generate", {"prompt": "x", "bogus": 1}, "bogus"),
        ("/sentiment", {"text": "   "}, "text"),
        ("/sentiment", {"text": 3}, "text"),
        ("/sentiment", {"texts": []}, "texts"),
        ("/ner", {"tokens": ["a b"]}, "tokens"),
        ("/ner", {"text": ""}, "text"),
    ],
)
def test_bad_field_is_422_naming_it(client: httpx.Client, path: str, body: dict[str, Any], field: str) -> None:
    assert field in error_fields(client.post(path, json=body))


def test_exactly_one_input_message(client: httpx.Client) -> None:
    assert "exactly one of `text` or `texts`" in str(error_fields(client.post("/sentiment", json={})))
    assert "exactly one of `text` or `tokens`" in str(
        error_fields(client.post("/ner", json={"text": "a", "tokens": ["a"]}))
    )


def test_nan_is_a_422_not_a_500(client: httpx.Client) -> None:
    r = client.post("/generate", content=b'{"temperature": NaN}', headers={"content-type": "application/json"})
    assert "temperature" in error_fields(r)


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"not json", "application/json", 422),
        (b'{"text": "unterminated', "application/json", 422),
        (b"[1, 2]", "application/json", 422),
        (b"text=hello", "application/x-www-form-urlencoded", 415),
        (b"\xff\xfe", "application/json", 422),
    ],
)
def test_non_json_bodies_are_4xx(client: httpx.Client, content: bytes, content_type: str, status: int) -> None:
    for path in ("/sentiment", "/ner", "/generate"):
        r = client.post(path, content=content, headers={"content-type": content_type})
        assert r.status_code == status, (path, r.text)


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    r = client.post("/sentiment", json={"text": "a" * 1_100_000})
    assert r.status_code == 413

    def chunks() -> Any:  # no content-length: counted while reading
        for _ in range(12):
            yield b"a" * 100_000

    r = client.post("/sentiment", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_unicode_emoji_and_unknown_characters(client: httpx.Client) -> None:
    for text in ["😀😀 great 👍🏽", "ναι, πολύ καλό", "\u2603\u0000x", "日本の映画"]:
        assert client.post("/sentiment", json={"text": text}).status_code == 200
        body = client.post("/ner", json={"text": text}).json()
        assert all(text[t["start"] : t["end"]] == t["text"] for t in body["tokens"])
    r = client.post("/generate", json={"prompt": "😀 ROMEO", "max_new_tokens": 5, "temperature": 0})
    assert r.status_code == 200 and len(r.json()["text"]) == 5
    lone = b'{"text": "ok \\ud800"}'
    assert client.post("/ner", content=lone, headers={"content-type": "application/json"}).status_code == 422


def test_openapi_documents_the_routes(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/generate", "/sentiment", "/ner"} <= set(spec["paths"])
    generate = spec["components"]["schemas"]["GenerateRequest"]["properties"]
    assert generate["max_new_tokens"]["maximum"] == 300  # the configured limit, not the default


def test_request_text_is_never_logged(server: Server, client: httpx.Client) -> None:
    marker = "Zanzibar-quokka-7731"
    client.post("/sentiment", json={"texts": [f"a film about {marker}"]})
    client.post("/ner", json={"text": f"{marker} visited Paris"})
    client.post("/generate", json={"prompt": marker, "max_new_tokens": 3, "stream": True})
    client.post("/generate", json={"prompt": marker, "max_new_tokens": -1})  # a 422 does not echo it either
    assert marker not in client.post("/ner", json={"tokens": [marker, "a b"]}).text
    assert marker not in server.log.read_text(errors="replace")

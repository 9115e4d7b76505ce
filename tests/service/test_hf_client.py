"""The real `huggingface_hub.InferenceClient` against the live server, unchanged: TGI's text generation (plain,
details, streamed) giving the same text as /generate for the same seed and parameters, the two classification
tasks, and errors raised as the client's own exception types."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError, ValidationError

from tests.service.serving import Server


@pytest.fixture(scope="module")
def hf(server: Server) -> InferenceClient:
    return InferenceClient(model=server.url, timeout=30)


def generated(client: httpx.Client, **request: object) -> str:
    r = client.post("/generate", json=request)
    assert r.status_code == 200, r.text
    text: str = r.json()["text"]
    return text


def test_text_generation_equals_generate(hf: InferenceClient, client: httpx.Client) -> None:
    sampled = {"temperature": 0.8, "seed": 7}
    text = hf.text_generation("ROMEO:", max_new_tokens=25, **sampled)  # type: ignore[arg-type]
    assert text == generated(client, prompt="ROMEO:", max_new_tokens=25, **sampled)
    # TGI decodes greedily unless asked to sample
    assert hf.text_generation("KING:", max_new_tokens=20) == generated(
        client, prompt="KING:", max_new_tokens=20, temperature=0
    )
    full = hf.text_generation("KING:", max_new_tokens=20, return_full_text=True)
    assert full == "KING:" + generated(client, prompt="KING:", max_new_tokens=20, temperature=0)


def test_details_and_stop_sequence(hf: InferenceClient, client: httpx.Client) -> None:
    free = generated(client, prompt="KING:", max_new_tokens=50, temperature=0)
    stop = free[8:11]
    out = hf.text_generation("KING:", max_new_tokens=50, stop=[stop], details=True)
    assert out.generated_text == free[: free.index(stop)] and out.details is not None
    assert out.details.finish_reason == "stop_sequence" and out.details.seed is None
    assert "".join(t.text for t in out.details.tokens) == out.generated_text
    assert all(t.logprob <= 0 and not t.special for t in out.details.tokens)
    sampled = hf.text_generation("KING:", max_new_tokens=10, do_sample=True, details=True)
    assert sampled.details is not None and sampled.details.finish_reason == "length"
    assert isinstance(sampled.details.seed, int)  # chosen by the server and reported: the answer can be replayed
    again = hf.text_generation("KING:", max_new_tokens=10, do_sample=True, seed=sampled.details.seed)
    assert again == sampled.generated_text


def test_stream_tokens(hf: InferenceClient, server: Server) -> None:
    whole = hf.text_generation("ROMEO:", max_new_tokens=40, temperature=0.8, seed=3)
    tokens = list(hf.text_generation("ROMEO:", max_new_tokens=40, temperature=0.8, seed=3, stream=True))
    assert "".join(tokens) == whole and len(tokens) == 40
    *events, last = hf.text_generation("ROMEO:", max_new_tokens=40, temperature=0.8, seed=3, stream=True, details=True)
    assert last.generated_text == whole and last.details is not None
    assert (last.details.finish_reason, last.details.generated_tokens, last.details.seed) == ("length", 40, 3)
    assert all(e.details is None and e.generated_text is None for e in events)
    body = {"inputs": "ROMEO:", "parameters": {"max_new_tokens": 40, "temperature": 0.8, "seed": 3}}
    with httpx.stream("POST", server.url + "/generate_stream", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert sum(line.startswith("data:") for line in r.iter_lines()) == 40


def test_classification_tasks(server: Server, client: httpx.Client) -> None:
    text = InferenceClient(model=server.url + "/hf/text-classification", timeout=30)
    (best, other) = text.text_classification("a gripping, funny and moving film")
    ours = client.post("/sentiment", json={"text": "a gripping, funny and moving film"}).json()
    assert (best.label, best.score) == (ours["label"], ours["score"]) and other.score < best.score
    assert [e.label for e in text.text_classification("dull", top_k=1)] == ["negative"]
    tokens = InferenceClient(model=server.url + "/hf/token-classification", timeout=30)
    sentence = "Barack Obama visited Paris"
    entities = tokens.token_classification(sentence)
    assert [(e.entity_group, e.word, e.start, e.end) for e in entities] == [
        ("PER", "Barack Obama", 0, 12),
        ("LOC", "Paris", 21, 26),
    ]
    assert all(sentence[e.start : e.end] == e.word and 0 < e.score <= 1 for e in entities)


def test_errors_raise_the_clients_exceptions(hf: InferenceClient, server: Server) -> None:
    with pytest.raises(ValidationError, match="max_new_tokens"):
        hf.text_generation("a", max_new_tokens=301)  # the server's configured limit (300)
    with pytest.raises(ValidationError, match="repetition_penalty"):
        hf.text_generation("a", max_new_tokens=5, repetition_penalty=1.2)
    with pytest.raises(HfHubHTTPError) as raised:
        InferenceClient(model=server.url + "/hf/text-classification").text_classification("   ")
    assert raised.value.response.status_code == 422
    assert raised.value.response.json()["error_type"] == "validation"

"""Any unicode text in: a valid answer or a clear 4xx out, never a 5xx (hypothesis over real HTTP)."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.schemas import NerResponse, SentimentResponse

texts = (
    st.text(max_size=300)
    | st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40)
    | st.lists(st.sampled_from(["<br />", "<BR>", " ", "a", "😀", "\u0301"]), max_size=6).map("".join)
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_sentiment_any_text(client: httpx.Client, text: str) -> None:
    r = client.post("/sentiment", json={"text": text})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        SentimentResponse.model_validate(r.json())
    else:
        assert r.json()["detail"][0]["loc"] == ["body", "text"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_ner_any_text(client: httpx.Client, text: str) -> None:
    r = client.post("/ner", json={"text": text})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        body = NerResponse.model_validate(r.json())
        assert all(text[t.start : t.end] == t.text for t in body.tokens)
        assert all(text[e.start : e.end] == e.text for e in body.entities)

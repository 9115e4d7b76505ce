"""The real `openai` SDK against the live server, unchanged but for `base_url`: plain and streamed completions, the
same text as /generate for the same seed and parameters, and errors raised as the SDK's own exception types."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.service.serving import Server


@pytest.fixture(scope="module")
def sdk(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed", max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def model(sdk: openai.OpenAI) -> str:
    (card,) = sdk.models.list().data
    assert "@" in card.id and card.owned_by == "rnnserve"
    return card.id


def generate(client: httpx.Client, **request: object) -> dict[str, object]:
    r = client.post("/generate", json=request)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_completion_equals_generate_for_the_same_seed(sdk: openai.OpenAI, model: str, client: httpx.Client) -> None:
    answer = sdk.completions.create(model=model, prompt="ROMEO:", max_tokens=25, temperature=0.8, seed=7)
    ours = generate(client, prompt="ROMEO:", max_new_tokens=25, temperature=0.8, seed=7)
    (choice,) = answer.choices
    assert answer.object == "text_completion" and answer.model == model and answer.id.startswith("cmpl-")
    assert choice.text == ours["text"] and choice.finish_reason == "length" and choice.index == 0
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (6, 25, 31)


def test_top_k_top_p_and_stop(sdk: openai.OpenAI, model: str, client: httpx.Client) -> None:
    free = generate(client, prompt="KING:", max_new_tokens=50, temperature=0)["text"]
    assert isinstance(free, str)
    stop = free[8:11]
    answer = sdk.completions.create(model=model, prompt="KING:", max_tokens=50, temperature=0, stop=stop)
    assert answer.choices[0].text == free[: free.index(stop)] and answer.choices[0].finish_reason == "stop"
    sampled = {"temperature": 1.0, "top_p": 0.9, "seed": 11}
    answer = sdk.completions.create(model=model, prompt="", max_tokens=40, extra_body={"top_k": 20}, **sampled)
    assert answer.choices[0].text == generate(client, prompt="", max_new_tokens=40, top_k=20, **sampled)["text"]


def test_stream_with_usage_then_done(sdk: openai.OpenAI, model: str, server: Server) -> None:
    whole = sdk.completions.create(model=model, prompt="ROMEO:", max_tokens=60, temperature=0.8, seed=3)
    chunks = list(
        sdk.completions.create(
            model=model,
            prompt="ROMEO:",
            max_tokens=60,
            temperature=0.8,
            seed=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *texts, last = chunks
    assert "".join(c.choices[0].text for c in texts) == whole.choices[0].text
    assert [c.choices[0].finish_reason for c in texts][-1] == "length"
    assert {c.id for c in chunks} == {chunks[0].id} and all(c.usage is None for c in texts)
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens == 60
    with httpx.stream(
        "POST", server.url + "/v1/completions", json={"model": model, "prompt": "a", "stream": True}
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert list(r.iter_lines())[-2:] == ["data: [DONE]", ""]


def test_echo(sdk: openai.OpenAI, model: str) -> None:
    answer = sdk.completions.create(model=model, prompt="KING:", max_tokens=5, temperature=0, echo=True)
    plain = sdk.completions.create(model=model, prompt="KING:", max_tokens=5, temperature=0)
    assert answer.choices[0].text == "KING:" + plain.choices[0].text


@pytest.mark.parametrize(
    ("arguments", "error", "param"),
    [
        ({"temperature": -1}, openai.BadRequestError, "temperature"),
        ({"max_tokens": 301}, openai.BadRequestError, "max_tokens"),  # the server's configured limit (300)
        ({"stop": ["a", "b", "c"]}, openai.BadRequestError, "stop"),  # 2 stop sequences configured
        ({"n": 2}, openai.BadRequestError, "n"),
        ({"logprobs": 6}, openai.BadRequestError, "logprobs"),
        ({"prompt": ["a"] * 9}, openai.BadRequestError, "prompt"),  # 8 texts per request configured
        ({"prompt": ["a", "b"], "stream": True}, openai.BadRequestError, "prompt"),
        ({"model": "gpt-3.5-turbo-instruct"}, openai.NotFoundError, "model"),
    ],
)
def test_errors_raise_the_sdk_exceptions(
    sdk: openai.OpenAI, model: str, arguments: dict[str, object], error: type[openai.APIStatusError], param: str
) -> None:
    request: dict[str, object] = {"model": model, "prompt": "a", "max_tokens": 5, **arguments}
    with pytest.raises(error) as raised:
        sdk.completions.create(**request)  # type: ignore[call-overload]
    body = raised.value.body
    assert isinstance(body, dict) and body["param"] == param and body["type"]
    assert param in raised.value.message or raised.value.status_code == 404


def test_logprobs_per_character(sdk: openai.OpenAI, model: str, client: httpx.Client) -> None:
    request = {"prompt": "KING:", "max_tokens": 20, "temperature": 0.9, "seed": 4}
    answer = sdk.completions.create(model=model, logprobs=1, **request)  # type: ignore[call-overload]
    (choice,) = answer.choices
    assert choice.logprobs is not None and "".join(choice.logprobs.tokens or []) == choice.text
    assert choice.logprobs.text_offset == list(range(20)) and all(
        lp <= 0 for lp in choice.logprobs.token_logprobs or []
    )
    ours = client.post("/generate", json={"prompt": "KING:", "max_new_tokens": 20, "temperature": 0.9, "seed": 4,
                                          "logprobs": True}).json()  # fmt: skip
    assert [t["logprob"] for t in ours["tokens"]] == choice.logprobs.token_logprobs
    chunks = list(sdk.completions.create(model=model, logprobs=1, stream=True, **request))  # type: ignore[call-overload]
    offsets = [o for c in chunks for o in (c.choices[0].logprobs.text_offset or [])]
    assert offsets == list(range(20))
    with pytest.raises(openai.BadRequestError, match="echo"):
        sdk.completions.create(model=model, prompt="a", max_tokens=2, echo=True, logprobs=1)


def test_a_list_of_prompts_gets_a_choice_each(sdk: openai.OpenAI, model: str, client: httpx.Client) -> None:
    prompts = ["ROMEO:", "KING:", ""]
    answer = sdk.completions.create(model=model, prompt=prompts, max_tokens=12, temperature=0.8, seed=9)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    for prompt, choice in zip(prompts, answer.choices, strict=True):
        assert choice.text == generate(client, prompt=prompt, max_new_tokens=12, temperature=0.8, seed=9)["text"]
    assert answer.usage is not None and answer.usage.completion_tokens == 36 and answer.usage.prompt_tokens == 11

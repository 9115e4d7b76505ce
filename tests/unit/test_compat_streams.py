"""A worker error in the middle of a stream reaches the real `openai` and `huggingface_hub` clients as their own
exceptions (an error event with an `error` key), and one before the first piece as their HTTP error types. The
routes run in uvicorn on a free port with scripted workers (`FakeWorkers`): a healthy model never takes these
paths."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import openai
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException
from huggingface_hub import InferenceClient
from huggingface_hub.errors import GenerationError, OverloadedError

from service.limits import Limits
from service.schemas import GeneratedToken, GeneratePiece, limited_models
from service.web.generations import Generations
from service.web.openai_api import add_openai_routes
from service.web.routes import add_error_handlers
from service.web.tgi_api import add_tgi_routes
from tests.service.serving import free_port
from tests.unit.test_routes import MODEL_FAILED, FakeWorkers, piece

OVERLOADED = HTTPException(503, "the /generate model worker stopped; the server restarts: retry")


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeWorkers, str]]:
    workers, app = FakeWorkers(), FastAPI()
    models = limited_models(Limits())
    add_openai_routes(app, Generations(workers), models, "charlm-test@1")  # type: ignore[arg-type]
    add_tgi_routes(app, Generations(workers), models)  # type: ignore[arg-type]
    add_error_handlers(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield workers, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def test_openai_stream_error_after_the_first_piece(served: tuple[FakeWorkers, str]) -> None:
    workers, url = served
    workers.script.append([piece("ab"), MODEL_FAILED])
    with openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as sdk:
        stream = sdk.completions.create(model="charlm", prompt="x", stream=True)
        assert next(stream).choices[0].text == "ab"
        with pytest.raises(openai.APIError, match="the model failed on this request"):
            next(stream)
        workers.script.append([OVERLOADED])
        with pytest.raises(openai.InternalServerError, match="retry"):
            sdk.completions.create(model="charlm", prompt="x", stream=True)


def test_tgi_stream_error_after_the_first_piece(served: tuple[FakeWorkers, str]) -> None:
    workers, url = served
    tokens = [GeneratedToken(id=1, text="a", logprob=-0.5), GeneratedToken(id=2, text="b", logprob=-0.1)]
    first = GeneratePiece(text="ab", tokens=tokens).model_dump_json()
    workers.script.append([first, MODEL_FAILED])
    hf = InferenceClient(model=url)  # held: the client closes its streams when it goes
    stream = hf.text_generation("x", stream=True, max_new_tokens=5)
    assert next(stream) == "a"  # "b" is held until the next piece shows whether it was the last
    with pytest.raises(GenerationError, match="the model failed on this request"):
        next(stream)
    workers.script.append([OVERLOADED])
    with pytest.raises(OverloadedError, match="retry"):
        hf.text_generation("x", max_new_tokens=5)

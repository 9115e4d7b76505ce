"""Baseline (a): what a user writes by hand. FastAPI + uvicorn, PyTorch eager, one process, no batching.

The same trained weights (the ONNX initializers loaded back into the training modules, `bench.torch_from_onnx`)
and the same pre- and post-processing as the service, so the comparison is about the serving stack and the
runtime. Plain `def` routes: FastAPI runs them in its thread pool, each request one model call.

    RNNSERVE_PORT=8001 python -m bench.baseline_fastapi
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from bench.torch_from_onnx import torch_model
from service.schemas import GenerateRequest, NerRequest, SentimentRequest
from service.settings import DEFAULT_ARTIFACTS
from service.tasks import ner, sentiment
from service.tasks.generation import CharGenerator, generate_text
from service.tasks.ner import NerModel
from service.tasks.sentiment import SentimentModel


def build_app(artifacts: Path) -> FastAPI:
    sentiment_model = SentimentModel(torch_model(artifacts / "sentiment"))
    ner_model = NerModel(torch_model(artifacts / "ner"))
    generator = CharGenerator(torch_model(artifacts / "charlm"))
    ids = {t: json.loads((artifacts / t / "manifest.json").read_text()) for t in ("sentiment", "ner", "charlm")}
    model_id = {t: f"{m['name']}@{m['version']}" for t, m in ids.items()}
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/sentiment")
    def sentiment_route(request: SentimentRequest) -> object:
        item = sentiment_model.encode_request(request)
        batch = sentiment_model.batch([item])
        (output,) = sentiment.unbatch(sentiment_model.predict(batch), batch)
        return sentiment.response(output, sentiment_model.labels, model_id["sentiment"])

    @app.post("/ner")
    def ner_route(request: NerRequest) -> object:
        batch = ner_model.batch([ner_model.encode_request(request)])
        (output,) = ner.unbatch(ner_model.predict(batch), batch, ner_model.decoder)
        return ner.annotate(output, ner_model.tags, model_id["ner"])

    @app.post("/generate")
    def generate_route(request: GenerateRequest) -> object:
        if not request.stream:
            piece = generate_text(generator, request)
            return {**piece.__dict__, "model": model_id["charlm"]}

        def events() -> Iterator[str]:
            for piece in generator.generate(request):
                data = {"text": piece.text}
                if piece.finish_reason:
                    data.update(finish_reason=piece.finish_reason, generated_tokens=piece.generated_tokens)
                yield f"data: {json.dumps(data)}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def main() -> None:
    artifacts = Path(os.environ.get("RNNSERVE_ARTIFACTS", DEFAULT_ARTIFACTS))
    port = int(os.environ.get("RNNSERVE_PORT", "8001"))
    uvicorn.run(build_app(artifacts), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()

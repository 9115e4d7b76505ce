"""Baseline (c): the server our users would write with LitServe and onnxruntime, by LitServe's documentation.

Two plain `ls.LitAPI`s (/sentiment, /ner): `setup` opens an `onnxruntime.InferenceSession` on the committed artifact
with onnxruntime's defaults, `decode_request` turns a request into ids with the same `rnntext` encoders as ours,
`batch` pads (the default would `np.stack`), `predict` is one `session.run`, `unbatch` and `encode_response` are our
task code's pure functions, so the answers have our shape and the model work is the same: only serving differs.
`max_batch_size=16`, `batch_timeout=0.005`; LitServe's defaults for everything else (its queues, its batched
loop, one worker per LitAPI, one HTTP process per worker), except `accelerator="cpu"` (the default, "auto", imports
torch to look for a GPU) and `generate_client_file=False` (the default writes client.py into the current folder).
No torch. Its idle worker polls its queue every millisecond: the bench runs it only while it is being measured.

    RNNSERVE_PORT=8003 python -m bench.baseline_litserve_onnx
"""

# No `from __future__ import annotations`: LitServe reads the request type from the live annotation.

import os
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np
import onnxruntime as ort

from rnntext.artifact import load_encoder
from rnntext.encoders import NerEncoder, SentimentEncoder
from rnntext.manifest import Manifest
from rnntext.tags import TagDecoder
from service.schemas import NerRequest, SentimentRequest
from service.settings import DEFAULT_ARTIFACTS
from service.tasks import ner, sentiment
from service.tasks.ner import NerBatch, NerInput, NerOutput
from service.tasks.sentiment import SentimentBatch, SentimentInput, SentimentOutput

MAX_BATCH_SIZE = 16
BATCH_TIMEOUT = 0.005


class OnnxAPI(ls.LitAPI):  # type: ignore[misc]  # litserve ships no type hints
    task = ""

    def __init__(self, artifacts: Path) -> None:
        super().__init__(max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT, api_path=f"/{self.task}")
        self.directory = artifacts / self.task

    def setup(self, device: str) -> None:
        self.manifest = Manifest.read(self.directory)
        self.encoder: Any = load_encoder(self.directory, self.manifest)
        self.session = ort.InferenceSession(str(self.directory / self.manifest.model_file))
        self.model_id = self.manifest.model_id


class SentimentOnnxAPI(OnnxAPI):
    task = "sentiment"

    def setup(self, device: str) -> None:
        super().setup(device)
        assert isinstance(self.encoder, SentimentEncoder)
        self.labels = self.manifest.labels or []
        self.pad_id = self.encoder.vocab.pad_id or 0

    def decode_request(self, request: SentimentRequest) -> SentimentInput:
        return sentiment.encode_request(self.encoder, request)

    def batch(self, inputs: list[SentimentInput]) -> SentimentBatch:
        return sentiment.batch(inputs, self.pad_id)

    def predict(self, batch: SentimentBatch) -> tuple[Any, SentimentBatch]:
        (probs,) = self.session.run(None, {"tokens": batch.tokens, "lengths": batch.lengths})
        return np.asarray(probs), batch

    def unbatch(self, output: tuple[Any, SentimentBatch]) -> list[SentimentOutput]:
        return sentiment.unbatch(*output)

    def encode_response(self, output: SentimentOutput) -> dict[str, Any]:
        return sentiment.response(output, self.labels, self.model_id).model_dump()


class NerOnnxAPI(OnnxAPI):
    task = "ner"

    def setup(self, device: str) -> None:
        super().setup(device)
        assert isinstance(self.encoder, NerEncoder)
        self.tags = self.manifest.tags or []
        self.decoder = TagDecoder.for_tags(self.tags, self.manifest.decoding)

    def decode_request(self, request: NerRequest) -> NerInput:
        return ner.encode_request(self.encoder, request)

    def batch(self, inputs: list[NerInput]) -> NerBatch:
        return ner.batch(self.encoder, inputs)

    def predict(self, batch: NerBatch) -> tuple[Any, NerBatch]:
        (log_probs,) = self.session.run(None, {"words": batch.words, "chars": batch.chars, "lengths": batch.lengths})
        return np.asarray(log_probs), batch

    def unbatch(self, output: tuple[Any, NerBatch]) -> list[NerOutput]:
        return ner.unbatch(*output, self.decoder)

    def encode_response(self, output: NerOutput) -> dict[str, Any]:
        return ner.annotate(output, self.tags, self.model_id).model_dump()


def main() -> None:
    # Classes from the importable module (not __main__), so that LitServe's spawned workers can unpickle them.
    from bench import baseline_litserve_onnx as this

    artifacts = Path(os.environ.get("RNNSERVE_ARTIFACTS", DEFAULT_ARTIFACTS))
    port = int(os.environ.get("RNNSERVE_PORT", "8003"))
    server = ls.LitServer([this.SentimentOnnxAPI(artifacts), this.NerOnnxAPI(artifacts)], accelerator="cpu")
    server.run(host="127.0.0.1", port=port, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()

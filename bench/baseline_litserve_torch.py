"""Baseline (b): our LitServe server exactly, with PyTorch eager instead of onnxruntime in every worker.

The three LitAPIs are subclassed only in `setup`, where the model is the ONNX weights loaded back into the
training modules (`bench.torch_from_onnx`) behind onnxruntime's `run` interface; routes, batching, workers, threads
(torch gets the same threads per worker as onnxruntime would) and settings are the service's own.

    RNNSERVE_PORT=8002 python -m bench.baseline_litserve_torch
"""

from __future__ import annotations

from service import server
from service.api_generate import GenerateAPI
from service.api_ner import NerAPI
from service.api_sentiment import SentimentAPI
from service.generation import CharGenerator
from service.ner import NerModel
from service.runtime import OnnxModel
from service.sentiment import SentimentModel
from service.workers import report


def _torch(api: GenerateAPI | SentimentAPI | NerAPI, task: str) -> OnnxModel:
    from bench.torch_from_onnx import torch_model  # imported in the worker: torch loads there

    settings = api.settings
    return torch_model(settings.artifact_dir(task), settings.threads_for(task), settings.chunk_threads)


class TorchGenerateAPI(GenerateAPI):
    def setup(self, device: str) -> None:
        model = _torch(self, "charlm")
        self.generator = CharGenerator(model)
        self.generator.warm_up()
        self.model_id = model.manifest.model_id
        report(self.status, model)


class TorchSentimentAPI(SentimentAPI):
    def setup(self, device: str) -> None:
        model = _torch(self, "sentiment")
        self.model = SentimentModel(model)
        self.model.warm_up()
        self.model_id = model.manifest.model_id
        report(self.status, model)


class TorchNerAPI(NerAPI):
    def setup(self, device: str) -> None:
        model = _torch(self, "ner")
        self.model = NerModel(model)
        self.model.warm_up()
        self.model_id = model.manifest.model_id
        report(self.status, model)


def main() -> None:
    # Classes taken from the importable module (not __main__), so that spawned workers can unpickle them.
    from bench import baseline_litserve_torch as this

    server.GenerateAPI = this.TorchGenerateAPI  # type: ignore[misc]
    server.SentimentAPI = this.TorchSentimentAPI  # type: ignore[misc]
    server.NerAPI = this.TorchNerAPI  # type: ignore[misc]
    server.main()


if __name__ == "__main__":
    main()

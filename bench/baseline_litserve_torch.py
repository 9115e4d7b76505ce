"""Baseline (b): our LitServe server exactly, with PyTorch eager instead of onnxruntime in every worker.

The three LitAPIs are subclassed only in `load_model`, which returns the ONNX weights loaded back into the
training modules (`bench.torch_from_onnx`) behind onnxruntime's `run` interface; routes, batching (continuous
batching for /generate included), workers, threads (torch gets the same threads per worker as onnxruntime would)
and settings are the service's own.

    RNNSERVE_PORT=8002 python -m bench.baseline_litserve_torch
"""

from __future__ import annotations

from service import server
from service.apis.base import ModelAPI
from service.apis.generate import GenerateAPI
from service.apis.ner import NerAPI
from service.apis.sentiment import SentimentAPI
from service.runtime import OnnxModel


class TorchModel(ModelAPI):
    def load_model(self) -> OnnxModel:
        from bench.torch_from_onnx import torch_model  # imported in the worker: torch loads there

        s = self.settings
        return torch_model(s.artifact_dir(self.task), s.threads_for(self.task), s.chunk_threads)


class TorchGenerateAPI(TorchModel, GenerateAPI):
    pass


class TorchSentimentAPI(TorchModel, SentimentAPI):
    pass


class TorchNerAPI(TorchModel, NerAPI):
    pass


def main() -> None:
    # Classes taken from the importable module (not __main__), so that spawned workers can unpickle them.
    from bench import baseline_litserve_torch as this

    server.main(server.APIClasses(this.TorchGenerateAPI, this.TorchSentimentAPI, this.TorchNerAPI))


if __name__ == "__main__":
    main()

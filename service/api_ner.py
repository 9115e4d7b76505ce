"""POST /ner with dynamic batching: token sequences padded into one call, lengths fed so padding changes nothing."""

# No `from __future__ import annotations`: LitServe reads the request type from the live annotation.
import litserve as ls
import pydantic_core

from service import ner
from service.batching import BlockingBatchedLoop
from service.ner import FloatArray, NerBatch, NerInput, NerModel, NerOutput
from service.schemas import NerRequest
from service.settings import Settings
from service.workers import WorkerStatus, load_model, report


class NerAPI(ls.LitAPI):  # type: ignore[misc]  # litserve ships no type hints
    def __init__(self, settings: Settings, status: WorkerStatus | None = None) -> None:
        super().__init__(
            api_path="/ner",
            max_batch_size=settings.max_batch_size,
            batch_timeout=settings.batch_timeout,
            loop=BlockingBatchedLoop(),  # LitServe's own polls its queue every millisecond, even idle
        )
        self.settings, self.status = settings, status

    def setup(self, device: str) -> None:
        model = load_model(self.settings, "ner")
        self.model = NerModel(model)
        self.model.warm_up()
        self.model_id = model.manifest.model_id
        report(self.status, model)

    def decode_request(self, request: NerRequest) -> NerInput:
        return self.model.decode(request)

    def batch(self, inputs: list[NerInput]) -> NerBatch:  # the default would np.stack
        return self.model.batch(inputs)

    def predict(self, batch: NerBatch) -> tuple[FloatArray, NerBatch]:
        return self.model.predict(batch), batch

    def unbatch(self, output: tuple[FloatArray, NerBatch]) -> list[NerOutput]:
        return ner.unbatch(*output, self.model.decoder)

    def encode_response(self, output: NerOutput) -> bytes:  # JSON: see service.routes.json_answer
        return pydantic_core.to_json(ner.annotate(output, self.model.tags, self.model_id))

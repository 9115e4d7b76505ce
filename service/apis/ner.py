"""POST /ner with dynamic batching: token sequences padded into one call, lengths fed so padding changes nothing."""

# No `from __future__ import annotations`: LitServe reads the request type from the live annotation.
import pydantic_core

from service.apis.base import BatchedModelAPI
from service.runtime import OnnxModel
from service.schemas import NerRequest
from service.tasks import ner
from service.tasks.arrays import FloatArray
from service.tasks.ner import NerBatch, NerInput, NerModel, NerOutput


class NerAPI(BatchedModelAPI):
    task = "ner"

    def prepare(self, model: OnnxModel) -> None:
        self.model = NerModel(model)
        self.model.warm_up()

    def decode_request(self, request: NerRequest) -> NerInput:
        return self.model.encode_request(request)

    def batch(self, inputs: list[NerInput]) -> NerBatch:  # the default would np.stack
        return self.model.batch(inputs)

    def predict(self, batch: NerBatch) -> tuple[FloatArray, NerBatch]:
        return self.model.predict(batch), batch

    def unbatch(self, output: tuple[FloatArray, NerBatch]) -> list[NerOutput]:
        return ner.unbatch(*output, self.model.decoder)

    def encode_response(self, output: NerOutput) -> bytes:  # JSON: see service.web.routes.json_answer
        return pydantic_core.to_json(ner.annotate(output, self.model.tags, self.model_id))

"""POST /sentiment with dynamic batching: requests (each one text or a list) are padded into one model call."""

# No `from __future__ import annotations`: LitServe reads the request type from the live annotation.
import pydantic_core

from service.apis.base import BatchedModelAPI
from service.runtime import OnnxModel
from service.schemas import SentimentRequest
from service.tasks import sentiment
from service.tasks.arrays import FloatArray
from service.tasks.sentiment import SentimentBatch, SentimentInput, SentimentModel, SentimentOutput


class SentimentAPI(BatchedModelAPI):
    task = "sentiment"

    def prepare(self, model: OnnxModel) -> None:
        self.model = SentimentModel(model)
        self.model.warm_up()

    def decode_request(self, request: SentimentRequest) -> SentimentInput:
        return self.model.encode_request(request)

    def batch(self, inputs: list[SentimentInput]) -> SentimentBatch:  # the default would np.stack
        return self.model.batch(inputs)

    def predict(self, batch: SentimentBatch) -> tuple[FloatArray, SentimentBatch]:
        return self.model.predict(batch), batch

    def unbatch(self, output: tuple[FloatArray, SentimentBatch]) -> list[SentimentOutput]:
        return sentiment.unbatch(*output)

    def encode_response(self, output: SentimentOutput) -> bytes:  # JSON: see service.web.routes.json_answer
        return pydantic_core.to_json(sentiment.response(output, self.model.labels, self.model_id))

"""POST /sentiment with dynamic batching: requests (each one text or a list) are padded into one model call."""

# No `from __future__ import annotations`: LitServe reads the request type from the live annotation.
import litserve as ls
import pydantic_core

from service import sentiment
from service.batching import BlockingBatchedLoop
from service.schemas import SentimentRequest
from service.sentiment import FloatArray, SentimentBatch, SentimentInput, SentimentModel, SentimentOutput
from service.settings import Settings
from service.workers import WorkerStatus, load_model, report


class SentimentAPI(ls.LitAPI):  # type: ignore[misc]  # litserve ships no type hints
    def __init__(self, settings: Settings, status: WorkerStatus | None = None) -> None:
        super().__init__(
            api_path="/sentiment",
            max_batch_size=settings.max_batch_size,
            batch_timeout=settings.batch_timeout,
            loop=BlockingBatchedLoop(),  # LitServe's own polls its queue every millisecond, even idle
        )
        self.settings, self.status = settings, status

    def setup(self, device: str) -> None:
        model = load_model(self.settings, "sentiment")
        self.model = SentimentModel(model)
        self.model.warm_up()
        self.model_id = model.manifest.model_id
        report(self.status, model)

    def decode_request(self, request: SentimentRequest) -> SentimentInput:
        return self.model.decode(request)

    def batch(self, inputs: list[SentimentInput]) -> SentimentBatch:  # the default would np.stack
        return self.model.batch(inputs)

    def predict(self, batch: SentimentBatch) -> tuple[FloatArray, SentimentBatch]:
        return self.model.predict(batch), batch

    def unbatch(self, output: tuple[FloatArray, SentimentBatch]) -> list[SentimentOutput]:
        return sentiment.unbatch(*output)

    def encode_response(self, output: SentimentOutput) -> bytes:  # JSON: see service.routes.json_answer
        return pydantic_core.to_json(sentiment.response(output, self.model.labels, self.model_id))

"""POST /generate: one LitAPI in streaming mode serves both answers. A streaming request gets one piece per
released chunk of text; a plain request gets a single final piece. The HTTP side (`service.routes`) turns the
pieces into Server-Sent Events or one JSON body."""

# No `from __future__ import annotations`: LitServe reads the request type from the live annotation.
from collections.abc import Iterator
from typing import Any

import litserve as ls

from service.generation import CharGenerator, Piece, coalesce, generate_text
from service.schemas import GeneratePiece, GenerateRequest
from service.settings import Settings
from service.workers import WorkerStatus, load_model, report


class GenerateAPI(ls.LitAPI):  # type: ignore[misc]  # litserve ships no type hints
    def __init__(self, settings: Settings, status: WorkerStatus | None = None) -> None:
        super().__init__(api_path="/generate", stream=True)
        self.settings, self.status = settings, status

    def setup(self, device: str) -> None:
        model = load_model(self.settings, "charlm")
        self.generator = CharGenerator(model)
        self.generator.warm_up()
        self.model_id = model.manifest.model_id
        report(self.status, model)

    def decode_request(self, request: GenerateRequest) -> GenerateRequest:
        return request

    def predict(self, request: GenerateRequest) -> Iterator[Piece]:
        if request.stream:
            yield from coalesce(self.generator.generate(request), self.settings.stream_interval)
        else:
            yield generate_text(self.generator, request)

    # Annotated Any: LitServe would turn an Iterator return type into an (invalid) FastAPI response model.
    def encode_response(self, pieces: Iterator[Piece]) -> Any:
        for piece in pieces:
            model = self.model_id if piece.finish_reason else None
            yield GeneratePiece(
                text=piece.text, finish_reason=piece.finish_reason, generated_tokens=piece.generated_tokens, model=model
            )

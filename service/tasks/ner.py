"""/ner pre- and post-processing as plain functions: text or tokens -> features, tag log-probabilities ->
BIO tags (constrained Viterbi), entities with character offsets and scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnntext.encoders import NerEncoder, NerFeatures
from rnntext.tags import TagDecoder, spans
from rnntext.tokenize import Token, join_tokens
from service.runtime import ArtifactError, OnnxModel, check_width
from service.schemas import NerEntity, NerRequest, NerResponse, NerToken
from service.tasks.arrays import FloatArray, IntArray


@dataclass(frozen=True)
class NerInput:
    text: str
    tokens: list[Token]
    features: NerFeatures


@dataclass(frozen=True)
class NerBatch:
    words: IntArray  # [batch, time]
    chars: IntArray  # [batch, time, chars]
    lengths: IntArray  # [batch]
    inputs: list[NerInput]


@dataclass(frozen=True)
class NerOutput:
    input: NerInput
    log_probs: FloatArray  # [tokens, tags], padding removed
    tags: list[int]  # the constrained Viterbi path, one tag index per token


class NerModel:
    # Sentences per onnxruntime call of a large batch (length-sorted chunks, `OnnxModel.output_by_length`): 4 here,
    # 8 for /sentiment, as measured for 11, 24 and 64 sentences on 2 chunk threads (docs/benchmarks.md, "Chunk
    # size"; for 11 the two are within noise).
    chunk = 4

    def __init__(self, model: OnnxModel) -> None:
        if not isinstance(model.encoder, NerEncoder) or not model.manifest.tags:
            raise ArtifactError(f"{model.directory / 'manifest.json'}: task check failed: not a NER artifact")
        self.model, self.encoder, self.tags = model, model.encoder, model.manifest.tags
        try:
            self.decoder = TagDecoder.for_tags(self.tags, model.manifest.decoding)
        except ValueError as err:
            raise ArtifactError(f"{model.directory / 'manifest.json'}: decoding: {err}") from err
        self.output_name = next(iter(model.manifest.io.outputs))

    def encode_request(self, request: NerRequest) -> NerInput:
        return encode_request(self.encoder, request)

    def batch(self, inputs: list[NerInput]) -> NerBatch:
        return batch(self.encoder, inputs)

    def predict(self, batch: NerBatch) -> FloatArray:
        feeds = {"words": batch.words, "chars": batch.chars, "lengths": batch.lengths}
        return self.model.output_by_length(self.output_name, feeds, self.chunk)

    def warm_up(self) -> None:
        log_probs = self.predict(self.batch([self.encode_request(NerRequest(text="EU rejects German call"))]))
        check_width(self.model, log_probs, self.tags, "tags")


def encode_request(encoder: NerEncoder, request: NerRequest) -> NerInput:
    """The request's tokens (given, or the text's with their offsets) and their features."""
    if request.tokens is not None:
        text, tokens = join_tokens(request.tokens)
    else:
        text, tokens = request.text or "", encoder.tokenize(request.text or "")
    return NerInput(text, tokens, encoder.encode([t.text for t in tokens]))


def batch(encoder: NerEncoder, inputs: list[NerInput]) -> NerBatch:
    words, chars, lengths = encoder.pad_batch([i.features for i in inputs])
    return NerBatch(words, chars, lengths, inputs)


def unbatch(log_probs: FloatArray, padded: NerBatch, decoder: TagDecoder) -> list[NerOutput]:
    """Per request: its log-probabilities and its tags, decoded for the whole batch at once."""
    paths = decoder.decode_batch(log_probs, padded.lengths)
    return [
        NerOutput(item, log_probs[i, : len(item.tokens)], path)
        for i, (item, path) in enumerate(zip(padded.inputs, paths, strict=True))
    ]


def annotate(output: NerOutput, tags: list[str], model_id: str) -> NerResponse:
    chosen = output.tags
    names = [tags[i] for i in chosen]
    probs = np.exp(output.log_probs[np.arange(len(chosen)), chosen]) if chosen else np.zeros(0)
    tokens, text = output.input.tokens, output.input.text
    entities = []
    for span in spans(names):
        start, end = tokens[span.start].start, tokens[span.end - 1].end
        score = float(probs[span.start : span.end].mean())
        entities.append(NerEntity(text=text[start:end], label=span.label, start=start, end=end, score=score))
    return NerResponse(
        entities=entities,
        tokens=[NerToken(text=t.text, start=t.start, end=t.end, tag=tag) for t, tag in zip(tokens, names, strict=True)],
        model=model_id,
    )

"""Committed-style NER artifacts over one vocabulary and tag set, used as one tagger through onnxruntime (no torch):
the mean of their tag log-probabilities and of their CRF scores, decoded as the service decodes.

`training.evaluate --ensemble` scores it; `train_ner --teacher=DIR,DIR,...` learns from it (Hinton et al. 2015's
ensemble distillation: one tagger of one tagger's size taught the ensemble's tag distributions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from rnntext.artifact import load_encoder
from rnntext.encoders import NerEncoder
from rnntext.manifest import Manifest
from rnntext.tags import TagDecoder
from training.ner_eval import decode_tags


@dataclass
class TaggerEnsemble:
    sessions: list[ort.InferenceSession]
    encoder: NerEncoder
    decoder: TagDecoder

    @classmethod
    def load(cls, directories: Sequence[Path]) -> TaggerEnsemble:
        """Raises ValueError unless every directory is an NER artifact with the first one's vocabulary and tags."""
        first = Manifest.read(directories[0])
        encoder = load_encoder(directories[0], first)
        if not isinstance(encoder, NerEncoder):
            raise ValueError(f"{directories[0]}: not an NER artifact")
        vocab = (directories[0] / first.vocab_file).read_bytes()
        manifests = [first]
        for directory in directories[1:]:
            member = Manifest.read(directory)
            if member.tags != first.tags or (directory / member.vocab_file).read_bytes() != vocab:
                raise ValueError(f"{directory}: not the same vocabulary and tags as {directories[0]}")
            manifests.append(member)
        sessions = [
            ort.InferenceSession(str(d / m.model_file), providers=["CPUExecutionProvider"])
            for d, m in zip(directories, manifests, strict=True)
        ]
        decoder = TagDecoder.for_tags(first.tags or [], mean_decoding([m.decoding for m in manifests]))
        return cls(sessions, encoder, decoder)

    def log_probs_of(self, words: np.ndarray, chars: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """[batch, words, tags]: the members' mean tag log-probabilities (what the decoder adds CRF scores to)."""
        feeds = {"words": words, "chars": chars, "lengths": lengths}
        return np.mean([np.asarray(s.run(None, feeds)[0]) for s in self.sessions], axis=0)

    def word_log_probs(self, sentences: Sequence[Sequence[str]], batch: int = 128) -> list[np.ndarray]:
        """[words, tags] float32 log-probabilities for each sentence, in the order given: the mean log-probabilities
        renormalised per word (a per-word constant, so Viterbi over them decodes as over the mean)."""
        order = np.argsort([len(s) for s in sentences], kind="stable")
        out: list[np.ndarray] = [np.empty(0) for _ in sentences]
        for i in range(0, len(order), batch):
            rows = order[i : i + batch]
            words, chars, lengths = self.encoder.pad_batch([self.encoder.encode(list(sentences[r])) for r in rows])
            mean = self.log_probs_of(words, chars, lengths)
            normalised = mean - np.logaddexp.reduce(mean, axis=-1, keepdims=True)
            for row, r, n in zip(normalised, rows, lengths, strict=True):
                out[r] = row[:n].astype(np.float32)
        return out

    def tags(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        return decode_tags(self.log_probs_of, self.encoder, self.decoder, sentences)


def mean_decoding(blocks: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The element-wise mean of several taggers' CRF scores: all of them have some, or none does."""
    present = [b for b in blocks if b is not None]
    if len(present) != len(blocks):
        if present:
            raise ValueError("some taggers of the ensemble have CRF scores and some do not")
        return None
    return {key: np.mean([np.array(b[key], np.float32) for b in present], axis=0) for key in present[0]}

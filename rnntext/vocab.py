"""Vocabularies: a token's id is its index in a JSON list (never pickle, so any language can read it)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PAD = "<pad>"
UNK = "<unk>"


@dataclass(frozen=True)
class Vocab:
    """An ordered list of tokens; `unk_id` catches everything unseen, `pad_id` fills batches."""

    tokens: tuple[str, ...]
    unk_id: int | None = None
    pad_id: int | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        for name, value in (("unk_id", self.unk_id), ("pad_id", self.pad_id)):
            if value is not None and not 0 <= value < len(self.tokens):
                raise ValueError(f"{name}={value} is outside the vocabulary of {len(self.tokens)} tokens")
        object.__setattr__(self, "_index", {token: i for i, token in enumerate(self.tokens)})

    @classmethod
    def build(
        cls,
        items: Iterable[str],
        *,
        min_count: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = (PAD, UNK),
    ) -> Vocab:
        """Specials first, then tokens by falling count (ties alphabetically, so builds are reproducible)."""
        counts = Counter(items)
        ranked = sorted(
            (t for t, c in counts.items() if c >= min_count and t not in specials), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(specials))]
        tokens = (*specials, *ranked)
        return cls(
            tokens,
            unk_id=tokens.index(UNK) if UNK in specials else None,
            pad_id=tokens.index(PAD) if PAD in specials else None,
        )

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def id(self, token: str) -> int:
        found = self._index.get(token)
        if found is not None:
            return found
        if self.unk_id is None:
            raise KeyError(f"{token!r} is not in the vocabulary, which has no unknown token")
        return self.unk_id

    def encode(self, tokens: Iterable[str]) -> list[int]:
        if self.unk_id is None:
            return [self.id(t) for t in tokens]
        index, unk = self._index, self.unk_id
        return [index.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"tokens": list(self.tokens)}
        if self.unk_id is not None:
            data["unk_id"] = self.unk_id
        if self.pad_id is not None:
            data["pad_id"] = self.pad_id
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Vocab:
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("a vocabulary needs 'tokens': a list of strings")
        unk_id, pad_id = data.get("unk_id"), data.get("pad_id")
        for name, value in (("unk_id", unk_id), ("pad_id", pad_id)):
            if value is not None and not isinstance(value, int):
                raise ValueError(f"'{name}' must be an integer, got {value!r}")
        return cls(tuple(tokens), unk_id=unk_id, pad_id=pad_id)  # type: ignore[arg-type]


def save_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def load_json(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data

"""rnntext.vocab: ids are list indices, specials first, unknowns map to <unk>, JSON round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnntext.vocab import PAD, UNK, Vocab, load_json, save_json


def test_build_orders_specials_then_count_then_alphabet() -> None:
    vocab = Vocab.build(["b", "a", "b", "c", "a", "b", "rare"], min_count=1, max_size=5)
    assert vocab.tokens == (PAD, UNK, "b", "a", "c")
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)


def test_min_count_and_lookup() -> None:
    vocab = Vocab.build(["x", "x", "y"], min_count=2)
    assert "x" in vocab and "y" not in vocab
    assert vocab.encode(["x", "y", "zzz"]) == [2, 1, 1]
    assert vocab.decode([2, 1]) == ["x", UNK]
    assert len(vocab) == 3


def test_no_unknown_token_raises_for_unseen() -> None:
    vocab = Vocab.build("ab", specials=())
    assert vocab.unk_id is None
    with pytest.raises(KeyError, match="no unknown token"):
        vocab.id("z")


def test_invalid_vocabularies_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        Vocab(("a", "a"))
    with pytest.raises(ValueError, match="unk_id=5"):
        Vocab(("a",), unk_id=5)
    with pytest.raises(ValueError, match="'tokens'"):
        Vocab.from_json({"tokens": [1, 2]})
    with pytest.raises(ValueError, match="'pad_id' must be an integer"):
        Vocab.from_json({"tokens": ["a"], "pad_id": "0"})


def test_json_round_trip(tmp_path: Path) -> None:
    vocab = Vocab.build(["é", "😀", "a"])
    save_json(tmp_path / "v.json", vocab.to_json())
    again = Vocab.from_json(load_json(tmp_path / "v.json"))
    assert again == vocab and again.id("😀") == vocab.id("😀")


def test_load_json_needs_an_object(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_json(tmp_path / "v.json")

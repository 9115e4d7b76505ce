"""service.tasks.generation with the committed char LM: prefill + carried state, greedy, seeds, stop strings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.runtime import OnnxModel
from service.schemas import GenerateRequest
from service.tasks.generation import Cancellation, CharGenerator, Coalescer, Piece, generate_text


@pytest.fixture(scope="module")
def generator(artifacts: Path) -> CharGenerator:
    gen = CharGenerator(OnnxModel.load(artifacts / "charlm", device="cpu"))
    gen.warm_up()
    return gen


def test_prefill_then_steps_equals_one_long_call(generator: CharGenerator) -> None:
    ids = generator.encoder.encode("ROMEO: what light")
    whole, _ = generator.prefill(ids)
    logits, state = generator.prefill(ids[:5])
    for token in ids[5:]:
        logits, state = generator.step(int(token), state)
    np.testing.assert_allclose(logits, whole, atol=1e-4)


def test_greedy_is_deterministic_and_never_emits_unknown(generator: CharGenerator) -> None:
    request = GenerateRequest(prompt="ROMEO:", max_new_tokens=40, temperature=0)
    first, second = generate_text(generator, request), generate_text(generator, request)
    assert first == second and first.finish_reason == "length" and first.generated_tokens == 40
    assert len(first.text) == 40
    assert "<unk>" not in first.text


def test_same_seed_same_text(generator: CharGenerator) -> None:
    def make(seed: int) -> str:
        return generate_text(generator, GenerateRequest(prompt="", max_new_tokens=60, seed=seed, temperature=1)).text

    assert make(3) == make(3)
    assert make(3) != make(4)


def test_stop_string_cuts_and_is_not_returned(generator: CharGenerator) -> None:
    free = generate_text(generator, GenerateRequest(prompt="KING:", max_new_tokens=60, temperature=0)).text
    stop = free[10:13]
    cut = free.index(stop)
    stopped = generate_text(generator, GenerateRequest(prompt="KING:", max_new_tokens=60, temperature=0, stop=[stop]))
    assert stopped.text == free[:cut] and stopped.finish_reason == "stop"
    assert stopped.generated_tokens == cut + len(stop)


def test_streamed_pieces_join_to_the_whole_text(generator: CharGenerator) -> None:
    request = GenerateRequest(prompt="A", max_new_tokens=30, seed=1, stop=["zzz"])
    pieces = list(generator.generate(request))
    assert all(p.finish_reason is None for p in pieces[:-1]) and pieces[-1].finish_reason is not None
    assert "".join(p.text for p in pieces) == generate_text(generator, request).text


def test_unknown_characters_in_the_prompt_are_accepted(generator: CharGenerator) -> None:
    out = generate_text(generator, GenerateRequest(prompt="😀\u2603 ROMEO", max_new_tokens=5, temperature=0))
    assert len(out.text) == 5


def released(coalescer: Coalescer, pieces: list[Piece]) -> list[Piece]:
    return [out for piece in pieces if (out := coalescer.push(piece)) is not None]


def test_coalescer_merges_pieces_by_time() -> None:
    ticks = iter([0.0, 0.001, 0.002, 0.030, 0.031, 0.032])
    pieces = [Piece("a"), Piece("b"), Piece("c"), Piece("d"), Piece("e"), Piece("f", "stop", 6)]
    out = released(Coalescer(interval=0.02, clock=lambda: next(ticks)), pieces)
    assert out == [Piece("a"), Piece("bcd"), Piece("ef", "stop", 6)]  # first at once, then every 20 ms, final
    assert released(Coalescer(interval=0.0), pieces[:3]) == pieces[:3]
    final = Piece("", "length", 2)
    assert released(Coalescer(interval=10), [*pieces[:2], final]) == [Piece("a"), Piece("b", "length", 2)]


def test_a_cancelled_generation_stops_and_reports_what_it_made(generator: CharGenerator) -> None:
    flags: dict[str, float] = {}
    ticks = iter(float(t) for t in range(1000))  # each check one "second" later: the mapping is read every step
    cancelled = Cancellation(flags, "req-1", interval=0.5, clock=lambda: next(ticks))
    request = GenerateRequest(prompt="A", max_new_tokens=300, temperature=0)
    pieces = []
    for piece in generator.generate(request, cancelled):
        pieces.append(piece)
        if len(pieces) == 5:
            flags["req-1"] = 1.0  # the HTTP side saw the client go
    last = pieces[-1]
    assert last.finish_reason is None and last.text == "" and last.generated_tokens is not None
    assert 5 <= last.generated_tokens < 10 and flags == {}  # the worker removes the flag it acted on
    assert released(Coalescer(interval=10), [Piece("ab"), last]) == [
        Piece("ab"),
        Piece("", None, last.generated_tokens),
    ]


def test_cancellation_reads_the_shared_mapping_at_most_every_interval() -> None:
    reads = []

    class Flags(dict[str, float]):
        def pop(self, key: str, default: object = None) -> object:  # type: ignore[override]
            reads.append(key)
            return super().pop(key, default)

    now = [0.0]
    cancelled = Cancellation(Flags(), "r", interval=0.05, clock=lambda: now[0])
    for t in (0.0, 0.01, 0.04, 0.06, 0.07, 0.2):
        now[0] = t
        assert cancelled() is False
    assert len(reads) == 3  # at 0.0 (the first, at once), 0.06 and 0.2


@pytest.mark.parametrize("stop", [[], ["e"]])
def test_logprobs_are_the_released_characters_one_for_one(generator: CharGenerator, stop: list[str]) -> None:
    request = GenerateRequest(prompt="KING:", max_new_tokens=30, temperature=0.9, seed=5, stop=stop)
    plain = generate_text(generator, request)
    scored = generate_text(generator, request.model_copy(update={"logprobs": True}))
    assert scored.text == plain.text and plain.tokens == ()
    assert "".join(t.text for t in scored.tokens) == scored.text
    assert all(t.logprob <= 0 and generator.encoder.decode([t.id]) == t.text for t in scored.tokens)
    greedy = generate_text(generator, GenerateRequest(prompt="KING:", max_new_tokens=1, temperature=0, logprobs=True))
    logits, _ = generator.prefill(generator.encoder.encode("KING:"))
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert greedy.tokens[0].logprob == pytest.approx(float(np.log(probs.max())), abs=1e-5)


def test_characters_outside_the_alphabet_are_reported(generator: CharGenerator) -> None:
    assert "é" not in generator.encoder.vocab and "☃" not in generator.encoder.vocab
    piece = generate_text(generator, GenerateRequest(prompt="ROMÉO: ☃é", max_new_tokens=3, temperature=0))
    assert set(piece.unknown_chars) == {"É", "é", "☃"} - {c for c in "É" if c in generator.encoder.vocab}
    assert generate_text(generator, GenerateRequest(prompt="ROMEO:", max_new_tokens=3)).unknown_chars == ()

"""service.tasks.sampling: greedy, seeded determinism, top-k/top-p support, banned ids never drawn."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.tasks.sampling import SamplingParams, next_token_probs, sample

LOGITS = np.log(np.array([0.05, 0.4, 0.3, 0.15, 0.1], dtype=np.float32))


def draws(params: SamplingParams, seed: int, n: int = 200, banned: tuple[int, ...] = ()) -> list[int]:
    rng = np.random.default_rng(seed)
    return [sample(LOGITS, params, rng, banned) for _ in range(n)]


def test_temperature_zero_is_argmax_and_ignores_the_generator() -> None:
    assert set(draws(SamplingParams(temperature=0), seed=1)) == {1}
    assert sample(LOGITS, SamplingParams(temperature=0), np.random.default_rng(), banned=[1]) == 2


def test_same_seed_same_draws() -> None:
    params = SamplingParams(temperature=0.9, top_k=4, top_p=0.95)
    assert draws(params, seed=7) == draws(params, seed=7)
    assert draws(params, seed=7) != draws(params, seed=8)


def test_top_k_restricts_support() -> None:
    assert set(draws(SamplingParams(temperature=1.0, top_k=2), seed=0, n=500)) == {1, 2}
    probs = next_token_probs(LOGITS, SamplingParams(top_k=2))
    assert np.count_nonzero(probs) == 2 and np.isclose(probs.sum(), 1)


def test_top_p_keeps_the_smallest_prefix_reaching_p() -> None:
    probs = next_token_probs(LOGITS, SamplingParams(top_p=0.6))  # 0.4 + 0.3 >= 0.6
    assert np.flatnonzero(probs).tolist() == [1, 2]
    assert np.flatnonzero(next_token_probs(LOGITS, SamplingParams(top_p=0.01))).tolist() == [1]
    assert set(draws(SamplingParams(temperature=1.0, top_p=0.6), seed=3, n=300)) == {1, 2}


def test_low_temperature_sharpens() -> None:
    cold = next_token_probs(LOGITS, SamplingParams(temperature=0.1))
    assert cold[1] > 0.9


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-30, 30), min_size=2, max_size=20),
    st.floats(0.0, 5.0),
    st.none() | st.integers(1, 25),
    st.none() | st.floats(0.01, 1.0),
    st.integers(0, 2**32),
)
def test_banned_id_is_never_sampled(
    logits: list[float], temperature: float, top_k: int | None, top_p: float | None, seed: int
) -> None:
    values = np.array(logits, dtype=np.float32)
    banned = int(np.argmax(values))  # the most likely id, the hardest one to keep out
    params = SamplingParams(temperature, top_k, top_p)
    rng = np.random.default_rng(seed)
    assert all(sample(values, params, rng, [banned]) != banned for _ in range(5))

"""service.tasks.stops: stop strings end generation, are never returned, and may arrive split over several steps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.tasks.stops import StopScanner


def run(stops: list[str], text: str) -> tuple[str, bool]:
    """Feed one character per step, as the generator does."""
    scanner, out = StopScanner(stops), []
    for ch in text:
        piece, stopped = scanner.push(ch)
        out.append(piece)
        if stopped:
            return "".join(out), True
    return "".join(out) + scanner.flush(), False


def test_stop_split_over_steps_is_held_then_dropped() -> None:
    scanner = StopScanner(["\n\n"])
    assert scanner.push("a") == ("a", False)
    assert scanner.push("\n") == ("", False)  # could be the start of the stop string: held back
    assert scanner.push("\n") == ("", True)


def test_held_text_is_released_when_it_stops_matching() -> None:
    scanner = StopScanner(["END"])
    assert scanner.push("E") == ("", False)
    assert scanner.push("N") == ("", False)
    assert scanner.push("x") == ("ENx", False)


def test_earliest_stop_wins_and_flush_returns_held_text() -> None:
    assert run(["cd", "b"], "abcd") == ("a", True)
    assert run(["xyz"], "abxy") == ("abxy", False)
    assert run([], "abc") == ("abc", False)


@given(st.text(alphabet="ab\n", max_size=30), st.lists(st.text(alphabet="ab\n", min_size=1, max_size=3), max_size=3))
def test_matches_cutting_the_whole_text(text: str, stops: list[str]) -> None:
    """Streaming gives the same answer as searching the finished text for the first completed stop string."""
    out, stopped = run(stops, text)
    ends = [(text.find(s) + len(s), text.find(s)) for s in stops if s in text]
    if ends:
        first_end = min(e for e, _ in ends)
        cut = min(start for end, start in ends if end == first_end)
        assert (out, stopped) == (text[:cut], True)
    else:
        assert (out, stopped) == (text, False)

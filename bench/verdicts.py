"""A target judged on a run (bench/targets.py holds the list): `verdict` for one target, `table` for the verdicts.

A ratio uses the head-to-head rounds where both figures were measured there (the median of the per-round ratios,
servers alternating), else the side-by-side table's one figure each. A tail figure (issue 18, `Figure.rounds`) is
read from `Results.tail` instead, bench/tail.py's rounds of ours against baseline (c) one server at a time: its
verdict is on the median of the per-round ratios, or of the rounds' figures. A target whose servers (or whose tail
rounds) were not measured has no verdict.
"""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from bench.figures import Figure
from bench.kinds import OURS, label
from bench.markdown import listed, num, table
from bench.results import Results
from bench.tail_results import TailResults

OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Target:
    figure: Figure
    op: str  # a key of OPS
    threshold: float
    versus: Figure | None = None  # None: `figure` itself against the threshold; else figure ÷ versus
    why: str = ""
    note: Callable[[Results], str] | None = None  # more of the measurement, for the "measured" cell


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float  # the ratio, or the figure itself
    measured: str
    holds: bool


def figure_of(r: Results, f: Figure, versus: Figure | None = None) -> float:
    """`f` (÷ `versus`) as the targets read it: the head-to-head median where the rounds measured it."""
    if versus is None:
        rounds = r.head_to_head.points.get(f.duel or "", {}).get(f.server, []) if r.head_to_head else []
        return statistics.median(rounds) if rounds else f.of(r.servers[f.server])
    duel = _duel(r, f, versus)
    return statistics.median(duel) if duel else _div(f.of(r.servers[f.server]), versus.of(r.servers[versus.server]))


def _div(a: float, b: float) -> float:
    """a / b; a figure over a zero (nothing measured in the window: a stalled server) is infinitely larger."""
    return a / b if b else (math.inf if a > 0 else math.nan)


def _duel(r: Results, f: Figure, versus: Figure) -> list[float]:
    if r.head_to_head is None or f.duel is None or versus.duel is None or f.server != OURS:
        return []
    return r.head_to_head.ratios(f.duel, versus.duel, versus.server, "p99_ms" if f.latency else "points")


def tail_verdict(t: Target, tail: TailResults | None) -> Verdict | None:
    """A tail target on bench/tail.py's rounds: the median of the per-round ratios (or of the rounds' figure); None
    where the rounds did not measure it."""
    f, v = t.figure, t.versus
    assert f.rounds is not None and (v is None or v.rounds is not None), "a tail target compares tail figures"
    mine = f.rounds(tail) if tail else []
    theirs = v.rounds(tail) if tail and v and v.rounds else []
    if not mine or (v is not None and not theirs):
        return None
    if v is None:
        value = statistics.median(mine)
        measured = f"median of {_rounds(len(mine))} {value:.{f.digits}f}{f.unit} ({listed(mine, f.digits)})"
    else:
        ratios = [_div(m, o) for m, o in zip(mine, theirs, strict=False)]
        value = statistics.median(ratios)
        medians = f"{num(statistics.median(mine), f.digits)} vs {num(statistics.median(theirs), v.digits)}{f.unit}"
        measured = f"median of {_rounds(len(ratios))} {value:.2f}× ({listed(ratios)}); medians {medians}"
    return Verdict(t, value, measured, OPS[t.op](value, t.threshold))


def _rounds(n: int) -> str:
    return f"{n} round{'s' if n != 1 else ''}"


def verdict(r: Results, t: Target) -> Verdict | None:
    """`t` on the run `r`; None where its servers (or its tail rounds) were not measured."""
    f, v = t.figure, t.versus
    if f.rounds is not None:
        return tail_verdict(t, r.tail)
    if f.server not in r.servers or (v is not None and v.server not in r.servers):
        return None
    mine = f.of(r.servers[f.server])
    if v is None:
        value, measured = mine, f"{mine:.{f.digits}f}{f.unit}"
    else:
        theirs = v.of(r.servers[v.server])
        digits = 1 if f.latency else 0
        once = f"{mine:.{digits}f} vs {theirs:.{digits}f}{f.unit} = {_div(mine, theirs):.2f}×"
        duel = _duel(r, f, v)
        value = statistics.median(duel) if duel else _div(mine, theirs)
        measured = (
            f"head to head, median of {len(duel)} rounds {value:.2f}× ({listed(duel)}); table: {once}" if duel else once
        )
    if t.note is not None:
        measured += t.note(r)
    return Verdict(t, value, measured, OPS[t.op](value, t.threshold))


def _against(v: Figure | None, f: Figure) -> str:
    if v is None:
        return "–"
    return label(v.server) if v.what == f.what else (v.what if v.server == f.server else f"{label(v.server)} {v.what}")


def verdict_table(verdicts: list[Verdict]) -> str:
    rows = []
    for v in verdicts:
        t = v.target
        needs = f"{t.op} {t.threshold:g}×" if t.versus is not None else f"{t.op} {t.threshold:g}{t.figure.unit}"
        holds = "**holds**" if v.holds else "**misses**"
        rows.append([t.figure.what, _against(t.versus, t.figure), needs, v.measured, holds, t.why])
    return table(["target", "against", "needs", "measured", "verdict", "why"], rows)

"""Stop strings over a stream of characters: text is released only once it cannot be the start of a stop string,
so a stop string that arrives split over several steps is never partly returned."""

from __future__ import annotations

from collections.abc import Sequence


class StopScanner:
    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.held = ""

    def push(self, piece: str) -> tuple[str, bool]:
        """Add generated text; returns (text safe to emit now, whether a stop string was completed).

        On a stop, the text before the earliest stop occurrence is released and the rest is dropped.
        """
        self.held += piece
        found = [i for i in (self.held.find(s) for s in self.stops) if i >= 0]
        if found:
            out, self.held = self.held[: min(found)], ""
            return out, True
        keep = self._longest_stop_prefix_suffix()
        cut = len(self.held) - keep
        out, self.held = self.held[:cut], self.held[cut:]
        return out, False

    def flush(self) -> str:
        """Generation ended for another reason: whatever was held back is ordinary text."""
        out, self.held = self.held, ""
        return out

    def _longest_stop_prefix_suffix(self) -> int:
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self.held)), best, -1):
                if self.held.endswith(stop[:n]):
                    best = n
                    break
        return best

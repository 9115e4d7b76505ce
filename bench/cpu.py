"""CPU time from /proc: of this process, of given processes, of the whole machine; `CpuClock` over one load point."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class CpuClock:
    """CPU seconds of this process and of other processes (from /proc), over one measurement."""

    pids: Sequence[int] = ()
    start_wall: float = field(default_factory=time.perf_counter)
    start_self: float = 0.0
    start_each: dict[int, float] = field(default_factory=dict)
    start_machine: float = 0.0

    def __post_init__(self) -> None:
        self.start_self, self.start_each = _self_cpu(), process_cpu_each(self.pids)
        self.start_machine = machine_cpu()

    def reset(self) -> None:
        self.__post_init__()
        self.start_wall = time.perf_counter()

    def shares(self) -> tuple[float, float, float]:
        """Cores used since the start by this process, by the other processes together, by the busiest of them."""
        wall = max(time.perf_counter() - self.start_wall, 1e-9)
        now = process_cpu_each(self.pids)
        each = [(now[p] - self.start_each.get(p, 0.0)) / wall for p in now]
        return (_self_cpu() - self.start_self) / wall, sum(each), max(each, default=0.0)

    def machine_cores(self) -> float:
        """Cores busy on the whole machine since the start (everything: this process, servers, anything else)."""
        return (machine_cpu() - self.start_machine) / max(time.perf_counter() - self.start_wall, 1e-9)


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


_TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat: everything but idle and iowait)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / _TICK


def process_cpu_each(pids: Sequence[int]) -> dict[int, float]:
    """CPU seconds (user + system) of each process still alive."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return out

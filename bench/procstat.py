"""CPU readings from /proc, shared by the benchmarks: no soku import, so that `accept.py`'s
load generator (which runs without soku) reads them the same way as the others."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
# indexes in `stat_fields`: the parent's pid; CPU ticks in user and kernel mode, its own and
# those of its children that ended
PPID, UTIME, STIME, CUTIME, CSTIME = 1, 11, 12, 13, 14


def stat_fields(stat: str) -> list[str]:
    """A `/proc/.../stat` line's fields after the command name (which may hold spaces and
    parentheses): the state first, then the parent's pid, and so on."""
    return stat.rsplit(")", 1)[1].split()


def stat_cpu(stat: str) -> float:
    """utime + stime, in seconds, of a process's or a thread's `/proc/.../stat` line."""
    fields = stat_fields(stat)
    return (int(fields[UTIME]) + int(fields[STIME])) / TICK


def proc_cpu(pid: int) -> float:
    """CPU seconds the process used so far (utime + stime)."""
    return stat_cpu(Path(f"/proc/{pid}/stat").read_text())


def runqueue_wait(pid: int) -> float:
    """Seconds the process's threads were runnable but waiting for a CPU (all threads)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended meanwhile
    return total / 1e9

"""Process-wide settings of a long-running Soku process (`soku serve`, `soku worker`).

`settle_heap` runs once the process has started, before it takes work. What is alive then
(modules, settings, the app, prepared statements) lives as long as the process, yet CPython's
full collections walk all of it again and again: in a 10,000-delivery burst they took about
a tenth of the worker's CPU (1.1 to 1.3 s of a 10 to 14 s burst, 11 full collections, each
over the start-up objects). Frozen (`gc.freeze`), those objects are left out of every
collection; objects made afterwards are collected as before, and reference counting still
frees everything that is not in a cycle. The youngest generation is collected every 50,000
net new objects instead of every 700. A delivery in flight holds a few hundred objects, so a
busy worker's 512 deliveries hold more than 100,000: at 700 the young collections ran about
1,300 times in a 10,000-delivery burst, and at 10,000 still 15 to 21 times in 6,000, each
walking the live deliveries' objects (about 7 ms) and moving them into the middle
generation. At 50,000 the net count rarely gets there: deliveries free what they made as
they finish. Measured with `gc.callbacks` (`bench/burst.py` prints them; docs/decisions.md,
"Garbage collection").

`run` runs a long-running process's event loop on uvloop where it is installed (uvicorn's
standard extra installs it except on Windows), as uvicorn does for `soku serve`, so that
`soku worker` runs on the same loop. In alternated 6,000-delivery bursts the worker's CPU
per delivery was about 9 % lower on uvloop (docs/decisions.md, "Event loop").
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

YOUNG_THRESHOLD = 50_000  # CPython's default is 700


def settle_heap() -> None:
    """Collect once, freeze what is left, and make young collections less frequent."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on uvloop's event loop, or on asyncio's where uvloop is missing."""
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] installs it everywhere but on Windows
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def loop_name() -> str:
    """The running event loop's library: "uvloop" or "asyncio"."""
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]

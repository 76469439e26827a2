"""Real `soku worker` processes for a delivery benchmark: the scaled-out shape.

DESIGN.md's scaled-out shape runs any number of `soku worker` processes against one
PostgreSQL database. One Python process delivers on about one core at most; this runs `count`
of them, so a benchmark can show what the second core of a machine adds. They are woken as
the API wakes them: a NOTIFY in the transaction that makes work due. SQLite has no NOTIFY
(a second process there wakes only by its poll), so this needs PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import common
from sqlalchemy import text

from soku.config import Settings
from soku.context import AppContext
from soku.delivery.wakeup import CHANNEL

START_SECONDS = 60.0
STOP_SECONDS = 30.0
# asyncpg's add_listener sends this; an idle connection shows its last statement.
_LISTENING = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = :listen"
)


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a `soku worker` with the benchmark's settings: the same database,
    secret key (the accounts' tokens are sealed with it), fake and log level; any other
    SOKU_* variable of this environment passes through, as it reaches this process too."""
    values = {
        "SOKU_DATA_DIR": str(settings.data_dir),
        "SOKU_DATABASE_URL": settings.database_url,
        "SOKU_SECRET_KEY": settings.secret_key or "",
        "SOKU_SANDBOX_BASE_URL": settings.sandbox_base_url,
        "SOKU_SANDBOX_FAKES": settings.sandbox_fakes,
        "SOKU_LOG_LEVEL": settings.log_level,
        "SOKU_LOG_FORMAT": "json",
    }
    return {**os.environ, **values}


class WorkerProcesses:
    """`count` `soku worker` processes on the settings' PostgreSQL database, their output in
    `logs` (one file each)."""

    def __init__(self, settings: Settings, count: int, concurrency: int | None, logs: Path):
        if not settings.database_url.startswith("postgresql"):
            raise ValueError("worker processes need PostgreSQL (LISTEN/NOTIFY wakes them)")
        self.settings = settings
        self.count = count
        self.concurrency = concurrency or settings.worker_concurrency
        self.logs = [logs / f"worker-{n}.log" for n in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def spawn(self) -> None:
        """Start them (they run until `stop`)."""
        cmd = [*common.soku_command(), "worker", "--concurrency", str(self.concurrency)]
        env = worker_env(self.settings)
        for log in self.logs:
            with log.open("wb") as out:  # the child keeps its own copy of the descriptor
                self.procs.append(
                    subprocess.Popen(
                        cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )

    async def listening(self, ctx: AppContext) -> None:
        """Wait until each listens for NOTIFY; fail with a worker's output if one exits or they
        are not all listening after START_SECONDS."""
        try:
            async with asyncio.timeout(START_SECONDS):
                while await self._listening(ctx) < self.count:
                    self.check_alive()
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise RuntimeError(
                f"the {self.count} worker processes were not all listening after "
                f"{START_SECONDS:g} s; the first one's output: {self.tail(0)}"
            ) from None

    async def _listening(self, ctx: AppContext) -> int:
        async with ctx.db.read() as s:
            found = await s.execute(_LISTENING, {"listen": f'LISTEN "{CHANNEL}"'})
            return int(found.scalar_one())

    def check_alive(self) -> None:
        """Fail when a worker process has exited (they run until stopped)."""
        for n, proc in enumerate(self.procs):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"worker process {n} exited with status {proc.returncode}: {self.tail(n)}"
                )

    def tail(self, n: int, chars: int = 2000) -> str:
        try:
            return self.logs[n].read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no output: {exc})"

    def stop(self) -> list[int]:
        """SIGTERM to each (a worker drains and exits), then their exit statuses; a worker
        still running after STOP_SECONDS is killed (status -9)."""
        return common.stop(*self.procs, within=STOP_SECONDS)

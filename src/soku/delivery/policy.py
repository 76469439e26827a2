"""Retries as data: what each kind of error means for a delivery, and when to try again."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from soku.platforms.connector import ErrorKind


@dataclass(frozen=True)
class Decision:
    """Retry after `delay` seconds, or give up (`delay` None)."""

    delay: float | None
    reason: str

    @property
    def retry(self) -> bool:
        return self.delay is not None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 2.0
    max_delay: float = 900.0
    jitter: float = 0.2  # ± this fraction of the delay
    retryable: frozenset[ErrorKind] = field(
        default_factory=lambda: frozenset(
            {
                ErrorKind.rate_limited,
                ErrorKind.server_error,
                ErrorKind.timeout,
                ErrorKind.connection,
            }
        )
    )

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Exponential: base * 2^(attempt-1), capped, with jitter so retries spread out."""
        raw: float = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1))
        source = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        spread: float = source.uniform(-self.jitter, self.jitter)
        return max(0.0, raw * (1 + spread))

    def decide(
        self,
        kind: ErrorKind,
        attempt: int,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> Decision:
        if kind not in self.retryable:
            return Decision(None, f"{kind.value} errors are not retried")
        if attempt >= self.max_attempts:
            return Decision(None, f"gave up after {attempt} attempts")
        delay = self.backoff(attempt, rng)
        if kind == ErrorKind.rate_limited and retry_after is not None:
            delay = max(delay, retry_after)  # never before the platform's reset
        return Decision(delay, f"retry {attempt + 1} of {self.max_attempts} in {delay:.1f} s")

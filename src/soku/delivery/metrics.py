"""Prometheus metrics of the delivery engine (one registry per running service)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


class DeliveryMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "soku_deliveries",
            "Delivery attempts finished, by platform and outcome",
            ["platform", "outcome"],
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "soku_delivery_attempt_seconds",
            "Time one delivery attempt took",
            ["platform"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.lateness_seconds = Histogram(
            "soku_delivery_lateness_seconds",
            "How long after its due time a delivery started",
            ["platform"],
            buckets=_LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "soku_deliveries_in_flight",
            "Deliveries this process is working on",
            registry=self.registry,
        )
        self.queue_due = Gauge(
            "soku_queue_due",
            "Deliveries due now and waiting for a worker",
            registry=self.registry,
        )
        self.oldest_due_seconds = Gauge(
            "soku_queue_oldest_due_seconds",
            "Age of the oldest due, waiting delivery",
            registry=self.registry,
        )
        self.webhooks = Counter(
            "soku_webhook_attempts",
            "Webhook attempts finished, by outcome (delivered, retrying, failed)",
            ["outcome"],
            registry=self.registry,
        )
        # each label set's child, looked up once: `labels()` rebuilds and locks per call
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def finished(self, platform: str, outcome: str, seconds: float) -> None:
        """One attempt finished: counted by platform and outcome, its time observed."""
        self._child(self.deliveries, platform, outcome).inc()
        self._child(self.attempt_seconds, platform).observe(seconds)

    def started_late(self, platform: str, seconds: float) -> None:
        """A delivery's first attempt started `seconds` after its due time."""
        self._child(self.lateness_seconds, platform).observe(max(0.0, seconds))

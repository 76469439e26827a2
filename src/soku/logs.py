"""structlog set-up: JSON lines outside a terminal, readable lines in one."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}

# The fields of what the current task works on (a worker's delivery run sets it: each asyncio
# task has a context of its own), as a function called only when a line is written: a run
# at log level warning formats none of them.
TASK_FIELDS: ContextVar[Callable[[], Mapping[str, Any]] | None] = ContextVar(
    "soku_task_fields", default=None
)


def merge_task_fields(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Processor: the current task's fields, under the line's own."""
    fields = TASK_FIELDS.get()
    if fields is not None:
        for key, value in fields().items():
            event_dict.setdefault(key, value)
    return event_dict


def logs_json(log_format: str) -> bool:
    """Whether lines are JSON: "json", or "auto" with stderr not a terminal."""
    return log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())


def json_formatter() -> logging.Formatter:
    """A standard-library formatter writing the same JSON lines (for uvicorn's loggers)."""
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
    )


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if logs_json(log_format)
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            merge_task_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.ERROR)),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)

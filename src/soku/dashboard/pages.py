"""Rendering the dashboard's pages: one Jinja2 environment, and the headers every page has."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from soku.dashboard.session import Viewer

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes HTML

# No script runs on these pages, none may frame them, and forms post only where they came from
# (a connect form's redirect to a platform is a navigation, which this does not restrict).
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(value: dt.datetime | None) -> str:
    """A time as the pages show it: UTC, to the second."""
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty(value: Any) -> str:
    """A stored answer (a platform's, an error's) as indented JSON text; the template escapes
    it like any other text."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def web_url(value: object) -> str | None:
    """A URL a page may link to: http(s) only (a platform's answer could hold any scheme)."""
    if not isinstance(value, str):
        return None
    return value if urlsplit(value).scheme.lower() in ("http", "https") else None


def duration(value: dt.timedelta | None) -> str:
    """A lateness or an attempt's length: `0.4 s`, `12 s`, `3 min 5 s`, `-2 s` (early)."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 10:
        return f"{sign}{seconds:.1f} s"
    if seconds < 120:
        return f"{sign}{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 120:
        return f"{sign}{minutes} min {rest} s"
    return f"{sign}{minutes // 60} h {minutes % 60} min"


def excerpt(text: object, limit: int = 90) -> str:
    """A post's text on one line, cut at `limit` characters."""
    if not isinstance(text, str):
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


templates.env.filters.update(
    when=when, pretty=pretty, web_url=web_url, duration=duration, excerpt=excerpt
)


def render(
    request: Request,
    viewer: Viewer | None,
    template: str,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """`template` with `viewer` (None on the sign-in page) and `context`; `notice` and
    `problem` in the context show as the page's message."""
    response = templates.TemplateResponse(
        request, template, {"viewer": viewer, **context}, status_code=status
    )
    response.headers.update(HEADERS)
    return response

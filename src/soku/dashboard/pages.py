"""Rendering the dashboard's pages: one Jinja2 environment, and the headers every page has."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

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


templates.env.filters["when"] = when


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

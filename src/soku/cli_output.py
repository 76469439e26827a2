"""How `soku` commands print: one JSON document for scripts (`--json`), tables and lines
for people. Results go to stdout; errors to stdout as JSON, or to stderr as a line."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table

err = Console(stderr=True)
WRAPPED_WIDTH = 16  # what a table counts for a column that may wrap (not an id)


def print_error(code: str, message: str, details: Any = None) -> None:
    print(json.dumps({"error": {"code": code, "message": message, "details": details or {}}}))


def fail(code: str, message: str, as_json: bool, exit_code: int, details: Any = None) -> NoReturn:
    """One way to report a failure: a JSON error for scripts, or a line for people."""
    if as_json:
        print_error(code, message, details)
    else:
        err.print(f"[red]{escape(code)}:[/red] {escape(message)}")
    raise typer.Exit(exit_code)


def emit(data: Any, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    columns = {name: [name] for name in (rows[0] if rows else {})}
    for row in rows:
        for name, value in row.items():
            columns[name].append("" if value is None else str(value))
    _print_whole(columns, title)


def _identifies(column: str) -> bool:
    """Whether a column holds what a user copies into another command or request."""
    return column.lower().endswith("id") or column in ("prefix", "email")


def _print_whole(columns: dict[str, list[str]], title: str) -> None:
    """A table (each column: its header, then its cells) in which no value is ever cut.

    Ids, prefixes and emails are never wrapped, and the table is made as wide as they need,
    wider than the terminal if it must be (the terminal then wraps its lines): Rich would
    otherwise shorten them to fit 80 columns. Other columns wrap, folding a word too long for
    them onto the next line rather than cutting it."""
    table = Table(title=escape(title))
    needed = 3 * len(columns) + 1  # each column's padding and border, and the last border
    for name, cells in columns.items():
        whole = _identifies(name)
        table.add_column(escape(name), no_wrap=whole, overflow="fold")
        widest = max(cell_len(cell) for cell in cells)
        needed += widest if whole else min(widest, WRAPPED_WIDTH)
    for row in zip(*(cells[1:] for cells in columns.values()), strict=True):
        table.add_row(*(escape(cell) for cell in row))
    console = Console()
    Console(width=max(console.width, needed)).print(table)


def print_quickstart(data: dict[str, Any]) -> None:
    """`soku quickstart` for people: the usable demo accounts, any other account of the user
    apart (a disconnected demo account is not reconnected: it was disconnected on purpose),
    the key once, and the dashboard's address."""

    def named(accounts: list[dict[str, Any]], state: bool) -> str:
        return ", ".join(
            f"{a['platform']}={a['accountId']}"
            + (f" ({'sandbox' if a['sandbox'] else 'real'}, {a['status']})" if state else "")
            for a in accounts
        )

    ready = [a for a in data["accounts"] if a["sandbox"] and a["status"] == "connected"]
    others = [a for a in data["accounts"] if a not in ready]
    console = Console(soft_wrap=True)  # the key on one line, whatever the terminal's width
    console.print(escape(f"Demo user {data['email']}; sandbox accounts: {named(ready, False)}"))
    if others:
        console.print(escape(f"Other accounts of this user: {named(others, True)}"))
    console.print(escape(f"API key (shown once):\n{data['key']}"))
    console.print(escape(f"Dashboard: {data['dashboard']} (sign in with this key)"))

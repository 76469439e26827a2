"""The `soku` command: serve the API and manage users, keys and accounts."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from soku import migrate, operations, runtime
from soku.auth.models import SubscriptionStatus
from soku.cli_output import emit, err, fail, print_error, print_quickstart
from soku.config import Settings, config_problems
from soku.db import Database
from soku.errors import ApiError

try:  # Typer 0.2x carries its own copy of click; older ones use click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click import UsageError  # type: ignore[assignment]

app = typer.Typer(
    help="Soku: publish posts to social platforms through one HTTP call.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
users_app = typer.Typer(help="Users and their subscriptions.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
accounts_app = typer.Typer(help="Connected platform accounts.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
for sub, name in (
    (users_app, "users"),
    (keys_app, "keys"),
    (accounts_app, "accounts"),
    (db_app, "db"),
):
    app.add_typer(sub, name=name)

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Email = Annotated[str, typer.Option("--email", help="The user's email.")]


def _settings(as_json: bool = False, serving_at: str | None = None) -> Settings:
    """The settings; for a server listening at `serving_at`, that address is the public base
    URL (media URLs, the sandbox's callbacks) unless SOKU_PUBLIC_BASE_URL says otherwise."""
    try:
        settings = Settings()
        if serving_at and "public_base_url" not in settings.model_fields_set:
            settings = Settings(public_base_url=serving_at)  # the sandbox URLs follow it
        return settings
    except ValidationError as exc:
        problems = config_problems(exc)
        message = f"Invalid configuration: {'; '.join(problems)}"
        fail("invalid_configuration", message, as_json, 2, {"problems": problems})


def _database(work: Coroutine[Any, Any, T], settings: Settings, as_json: bool) -> T:
    """`asyncio.run(work)`, with a database that cannot be reached, or that refuses what is
    asked of it, reported in one line instead of a traceback."""
    try:
        return asyncio.run(work)
    except operations.SchemaNotReady as exc:
        fail("schema_not_ready", str(exc), as_json, 2)
    except migrate.SchemaTooNew as exc:
        fail("schema_too_new", str(exc), as_json, 2)
    except operations.SecretKeyMismatch as exc:
        fail("invalid_configuration", str(exc), as_json, 2)
    except DBAPIError as exc:
        where, reason = _database_named(settings.database_url), _first_line(exc.orig or exc)
        fail("database_error", f"The database {where} answered: {reason}", as_json, 1)
    except OSError as exc:
        where, reason = _database_named(settings.database_url), _first_line(exc)
        fail("database_unreachable", f"Cannot reach the database {where}: {reason}", as_json, 1)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def _database_named(url: str) -> str:
    """The database URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.partition("://")[0]


def _run(
    action: Callable[[AsyncSession, Settings], Awaitable[T]],
    as_json: bool,
    settings: Settings | None = None,
) -> T:
    settings = settings or _settings(as_json)

    async def main() -> T:
        db = Database(settings.database_url, pool_size=2)
        try:
            await operations.prepare_schema(db, settings)
            async with db.transaction() as session:
                return await action(session, settings)
        finally:
            await db.dispose()

    try:
        return _database(main(), settings, as_json)
    except ApiError as exc:
        fail(exc.code, exc.message, as_json, 1, exc.details)


@users_app.command("create")
def users_create(
    email: Email,
    subscription: Annotated[
        SubscriptionStatus, typer.Option(help="Subscription status.")
    ] = SubscriptionStatus.active,
    plan: Annotated[
        str | None, typer.Option(help="Rate-limit plan (default SOKU_DEFAULT_PLAN).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a user."""
    data = _run(lambda s, c: operations.create_user(s, c, email, subscription, plan), as_json)
    emit(data, as_json, "User created")


@users_app.command("set-subscription")
def users_set_subscription(
    email: Email,
    status: Annotated[SubscriptionStatus, typer.Option("--status", help="New status.")],
    as_json: JsonFlag = False,
) -> None:
    """Change a user's subscription status."""
    data = _run(lambda s, c: operations.update_user(s, c, email, subscription=status), as_json)
    emit(data, as_json, "User updated")


@users_app.command("set-plan")
def users_set_plan(
    email: Email,
    plan: Annotated[str, typer.Option("--plan", help="Plan name (see SOKU_RATE_LIMIT_PLANS).")],
    as_json: JsonFlag = False,
) -> None:
    """Change a user's rate-limit plan."""
    data = _run(lambda s, c: operations.update_user(s, c, email, plan=plan), as_json)
    emit(data, as_json, "User updated")


@keys_app.command("create")
def keys_create(
    email: Email,
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key; it is printed once and never stored."""
    data = _run(lambda s, c: operations.create_key(s, email, name), as_json)
    if as_json:
        emit(data, True, "")
        return
    console = Console(soft_wrap=True)  # the key on one line, whatever the terminal's width
    console.print(f"API key for {escape(email)} (shown once, store it now):\n{data['key']}")
    console.print(f"Its prefix (for keys list and keys revoke): {escape(data['prefix'])}")


@keys_app.command("list")
def keys_list(email: Email, as_json: JsonFlag = False) -> None:
    """List a user's keys by name and prefix (the keys themselves are never stored)."""
    data = _run(lambda s, c: operations.list_keys(s, email), as_json)
    emit(data, as_json, f"API keys of {email}")


@keys_app.command("revoke")
def keys_revoke(
    key_or_prefix: Annotated[
        str, typer.Argument(help="The whole key or its prefix (see keys list).")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API key."""
    data = _run(lambda s, c: operations.revoke_key(s, key_or_prefix), as_json)
    if as_json:
        emit(data, True, "")
        return
    within = data.pop("refusedWithinSeconds")
    emit(data, False, "Key revoked")
    Console(soft_wrap=True).print(
        f"Running servers refuse it within {within:g} s (how long they keep a key in memory)."
    )


@accounts_app.command("connect")
def accounts_connect(
    email: Email,
    platform: Annotated[
        str,
        typer.Option(
            help="instagram, tiktok, youtube, facebook, x, threads, linkedin or snapchat."
        ),
    ],
    account_id: Annotated[
        str, typer.Option("--account-id", help="Your name for it, e.g. ig_main.")
    ],
    sandbox: Annotated[
        bool, typer.Option("--sandbox", help="Deliver to the built-in fake platform.")
    ] = False,
    access_token: Annotated[str | None, typer.Option(help="A real account's access token.")] = None,
    refresh_token: Annotated[str | None, typer.Option(help="Its refresh token.")] = None,
    platform_user_id: Annotated[
        str | None,
        typer.Option(
            help="The platform's id for it: the X user id, the Facebook Page id, the LinkedIn "
            "author URN (urn:li:person:… or urn:li:organization:…), the Threads user id."
        ),
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="Its handle on the platform (for permalinks).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Connect an account."""
    data = _run(
        lambda s, c: operations.connect_account(
            s,
            c,
            email,
            platform,
            account_id,
            sandbox,
            access_token,
            refresh_token,
            platform_user_id,
            username,
        ),
        as_json,
    )
    if as_json:
        emit(data, True, "")
        return
    for warning in data.pop("warnings"):
        err.print(
            f"[yellow]warning: {escape(warning['code'])}:[/yellow] {escape(warning['message'])}"
        )
    emit(data, False, "Account connected")


@accounts_app.command("disconnect")
def accounts_disconnect(
    email: Email,
    platform: Annotated[str, typer.Option(help="The account's platform.")],
    account_id: Annotated[str, typer.Option("--account-id", help="Its id, as connected.")],
    as_json: JsonFlag = False,
) -> None:
    """Disconnect an account: its tokens are erased and posts can no longer target it."""
    data = _run(lambda s, c: operations.disconnect_account(s, email, platform, account_id), as_json)
    if as_json:
        emit(data, True, "")
        return
    pending = data.pop("pendingDeliveries")
    emit(data, False, "Account disconnected")
    if pending:
        err.print(
            f"[yellow]warning:[/yellow] {pending} of its deliveries have not run; they will "
            "fail with account_disconnected unless it is connected again before they do."
        )


@accounts_app.command("list")
def accounts_list(email: Email, as_json: JsonFlag = False) -> None:
    """List a user's accounts."""
    data = _run(lambda s, c: operations.list_accounts(s, email), as_json)
    emit(data, as_json, f"Accounts of {email}")


@db_app.command("upgrade")
def db_upgrade(as_json: JsonFlag = False) -> None:
    """Bring the database schema up to date."""
    settings = _settings(as_json)
    data = _database(operations.upgrade_database(settings), settings, as_json)
    data["database"] = _database_named(settings.database_url)
    if as_json:
        emit(data, True, "")
        return
    done = f"Database schema is up to date: revision {data['revision']}"
    if data["upgraded"]:
        done += f" (was {data['previousRevision'] or 'empty'})"
    Console().print(escape(done + "."), soft_wrap=True)


@app.command("quickstart")
def quickstart(
    email: Annotated[str, typer.Option(help="The demo user's email.")] = "demo@soku.local",
    host: Annotated[str, typer.Option(help="Where `soku serve` will listen.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Its port.", min=1, max=65535)] = 8000,
    as_json: JsonFlag = False,
) -> None:
    """Make a demo user with a new API key and a sandbox account on every platform."""
    from soku.serving import listening_url  # the dashboard `soku serve` will serve

    settings = _settings(as_json, listening_url(host, port))
    data = _run(lambda s, c: operations.quickstart(s, c, email), as_json, settings)
    if as_json:
        emit(data, True, "")
        return
    print_quickstart(data)


LongRunningJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Log JSON lines on stderr (as SOKU_LOG_FORMAT=json); errors before start-up "
        "print a JSON error on stdout.",
    ),
]


def _long_running_settings(as_json: bool, serving_at: str | None = None) -> Settings:
    """`serve` and `worker`: settings checked, schema ready; --json forces JSON logs."""
    settings = _settings(as_json, serving_at)
    if as_json:
        settings = settings.model_copy(update={"log_format": "json"})
    _database(operations.ensure_schema_for_serving(settings), settings, as_json)
    return settings


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Also deliver posts in this process.")
    ] = True,
    as_json: LongRunningJson = False,
) -> None:
    """Run the API server (and, unless --no-worker, the delivery worker)."""
    from soku.serving import listening_url  # imports uvicorn: only for the server

    settings = _long_running_settings(as_json, listening_url(host, port))
    try:
        operations.run_server(settings, host, port, run_worker=worker)
    except operations.CannotServe as exc:
        fail("cannot_serve", str(exc), as_json, 3)


@app.command("worker")
def worker_command(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Deliveries in flight at once (SOKU_WORKER_CONCURRENCY).", min=1),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve /metrics, /healthz and /readyz on this port (SOKU_WORKER_METRICS_PORT; "
            "0: any free port, logged).",
            min=0,
            max=65535,
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        typer.Option(help="Address of the metrics port (SOKU_WORKER_METRICS_HOST, 127.0.0.1)."),
    ] = None,
    as_json: LongRunningJson = False,
) -> None:
    """Run only the delivery worker (any number may run against one PostgreSQL database)."""
    settings = _long_running_settings(as_json)
    given = {"worker_metrics_port": metrics_port, "worker_metrics_host": metrics_host}
    settings = settings.model_copy(update={k: v for k, v in given.items() if v is not None})
    try:
        runtime.run(operations.run_worker(settings, concurrency))
    except operations.CannotServe as exc:
        fail("cannot_serve", str(exc), as_json, 3)


def _main_with_json_errors() -> int:
    """The CLI for a caller that asked for JSON: a usage error is a JSON error on stdout too
    (exit status 2, as click gives it), instead of click's box of text."""
    try:
        outcome = app(standalone_mode=False)
    except UsageError as exc:
        details = {"command": exc.ctx.command_path} if exc.ctx else {}
        message = exc.format_message().replace("Value error, ", "")  # pydantic's, via Typer
        print_error("usage_error", message, details)
        return exc.exit_code
    return outcome if isinstance(outcome, int) else 0  # the exit status of typer.Exit


def main() -> None:
    try:
        if "--json" in sys.argv[1:]:
            sys.exit(_main_with_json_errors())
        app()
    except KeyboardInterrupt:
        sys.exit(130)

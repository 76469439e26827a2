"""Settings > Integrations: the user's connected accounts, and connecting more.

X, LinkedIn, Facebook (Pages) and Threads connect by signing in at the platform (a real
account, when the operator configured the platform's app) or at its sandbox fake; the other
platforms connect a sandbox account directly, as `soku accounts connect --sandbox` does.
The flow itself is `soku.integrations.oauth`; these routes wire the browser to it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from soku.auth.models import User
from soku.config import Settings
from soku.context import get_context
from soku.dashboard.forms import Checked, PageRoute, SignedIn, field
from soku.dashboard.pages import render
from soku.dashboard.session import Refused, Viewer
from soku.errors import ApiError
from soku.integrations import repository, service
from soku.integrations.models import Account
from soku.integrations.oauth import ConnectFlows, PageChoice, label, oauth_spec
from soku.integrations.oauth_errors import ConnectFailed
from soku.integrations.vault import TokenVault
from soku.platforms import PLATFORM_NAMES

# an API error not caught here answers as the problem page (PageRoute), never as JSON
router = APIRouter(prefix="/dashboard/integrations", include_in_schema=False, route_class=PageRoute)
PAGE = "/dashboard/integrations"


@dataclass(frozen=True)
class PlatformOffer:
    """How the page offers to connect one platform."""

    name: str
    label: str
    oauth: bool  # connects by signing in at the platform (or its fake)
    real: bool  # the operator configured the platform's app: real accounts can connect
    redirect_uri: str


def _flows(request: Request) -> ConnectFlows:
    return ConnectFlows(get_context(request))


def _platform(platform: str) -> str:
    if platform not in PLATFORM_NAMES:
        raise Refused(404, f"There is no platform {platform[:40]!r}.")  # the URL's: bounded
    return platform


def _sandbox_reachable(settings: Settings) -> bool:
    """The fakes are mounted here, or the operator named where they are."""
    return settings.sandbox_mounted or settings.sandbox_url != (
        f"{settings.public_base_url}/sandbox"
    )


def _offers(flows: ConnectFlows) -> list[PlatformOffer]:
    return [
        PlatformOffer(
            name,
            label(name),
            oauth_spec(name) is not None,
            flows.real_app(name) is not None,
            flows.redirect_uri(name),
        )
        for name in PLATFORM_NAMES
    ]


async def _page(
    request: Request,
    viewer: Viewer,
    *,
    notice: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    ctx = get_context(request)
    async with ctx.db.read() as session:
        accounts = await repository.accounts_of(session, viewer.user_id)
    return render(
        request,
        viewer,
        "integrations.html",
        status=status,
        accounts=accounts,
        offers=_offers(ConnectFlows(ctx)),
        labels={name: label(name) for name in PLATFORM_NAMES},
        sandbox=_sandbox_reachable(ctx.settings),
        notice=notice,
        problem=problem,
    )


@router.get("")
async def integrations(request: Request, viewer: SignedIn) -> Response:
    return await _page(request, viewer, notice=await _notice(request, viewer))


async def _notice(request: Request, viewer: Viewer) -> str | None:
    """What the redirect that brought the user here says was done (by account row id)."""
    query = request.query_params
    done = next((what for what in ("connected", "disconnected") if what in query), None)
    if done is None:
        return None
    try:
        row_id = uuid.UUID(query[done])
    except ValueError:
        return None
    async with get_context(request).db.read() as session:
        account = await session.get(Account, row_id)
    if account is None or account.user_id != viewer.user_id:
        return None
    name = f"{label(account.platform)} account {account.account_id!r}"
    if done == "connected":
        who = f" ({account.username})" if account.username else ""
        kind = "sandbox" if account.sandbox else "real"
        return f"Connected your {kind} {name}{who}."
    pending = query.get("pending", "0")
    later = (
        f" Its {pending} deliveries not yet run will fail unless you connect it again first."
        if pending.isdigit() and int(pending) > 0
        else ""
    )
    return f"Disconnected your {name}; its tokens are erased.{later}"


def _done(what: str, account: Account, extra: str = "") -> Response:
    return RedirectResponse(f"{PAGE}?{what}={account.id}{extra}", status_code=303)


@router.post("/{platform}/connect")
async def connect(request: Request, platform: str, checked: Checked) -> Response:
    viewer, form = checked
    platform = _platform(platform)
    account_id = field(form, "account_id")
    sandbox = field(form, "mode") != "real"
    try:
        if oauth_spec(platform) is None:
            return _done("connected", await _connect_sandbox(request, viewer, platform, account_id))
        if sandbox and not _sandbox_reachable(get_context(request).settings):
            raise ConnectFailed("The sandbox fakes are not reachable from this service.")
        url = await _flows(request).start(
            viewer.user_id,
            platform,
            account_id,
            sandbox=sandbox,
            again=field(form, "reconnect") == "1",
        )
    except ConnectFailed as exc:
        return await _page(request, viewer, problem=exc.message, status=exc.status)
    return RedirectResponse(url, status_code=303)


async def _connect_sandbox(
    request: Request, viewer: Viewer, platform: str, account_id: str
) -> Account:
    """A sandbox account of a platform without a sign-in of its own (the CLI's --sandbox)."""
    ctx = get_context(request)
    async with ctx.db.transaction() as session:
        user = await _user(session, viewer)
        try:
            return await service.connect_account(
                session,
                user,
                platform,
                account_id,
                sandbox=True,
                vault=TokenVault(ctx.settings.resolved_secret_key),
            )
        except ApiError as exc:
            raise ConnectFailed(exc.message) from None


async def _user(session: AsyncSession, viewer: Viewer) -> User:
    user = await session.get(User, viewer.user_id)
    if user is None:
        raise ConnectFailed("Your user no longer exists.")
    return user


@router.get("/{platform}/callback")
async def callback(request: Request, platform: str, viewer: SignedIn) -> Response:
    platform = _platform(platform)
    answer = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    try:
        finished = await _flows(request).finish(viewer.user_id, platform, answer)
    except ConnectFailed as exc:
        return await _page(request, viewer, problem=exc.message, status=exc.status)
    if isinstance(finished, PageChoice):
        return render(request, viewer, "integrations_pages.html", choice=finished,
                      label=label(platform))  # fmt: skip
    return _done("connected", finished)


@router.post("/{platform}/choose")
async def choose(request: Request, platform: str, checked: Checked) -> Response:
    viewer, form = checked
    platform = _platform(platform)
    try:
        account = await _flows(request).choose(
            viewer.user_id, platform, field(form, "state"), field(form, "page_id")
        )
    except ConnectFailed as exc:
        return await _page(request, viewer, problem=exc.message, status=exc.status)
    return _done("connected", account)


@router.post("/{platform}/disconnect")
async def disconnect(request: Request, platform: str, checked: Checked) -> Response:
    viewer, form = checked
    platform = _platform(platform)
    account_id = field(form, "account_id")
    try:
        async with get_context(request).db.transaction() as session:
            user = await _user(session, viewer)
            account = await service.disconnect_account(session, user, platform, account_id)
            pending = await repository.unfinished_deliveries(session, account.id)
    except (ApiError, ConnectFailed) as exc:
        return await _page(request, viewer, problem=exc.message, status=400)
    return _done("disconnected", account, f"&pending={pending}")

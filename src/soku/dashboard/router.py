"""The dashboard's routes: sign-in and sign-out here, each page's own router included below."""

from __future__ import annotations

import inspect
import secrets
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from soku.auth import repository
from soku.auth.keys import hash_key
from soku.config import Settings
from soku.context import get_context
from soku.dashboard import account, compose, integrations, keys, posts, sign_ins, webhooks
from soku.dashboard.forms import Checked, SignedIn
from soku.dashboard.pages import HERE, render
from soku.dashboard.session import (
    COOKIE,
    LOGIN_COOKIE,
    PATH,
    SESSION_SECONDS,
    SIGN_IN_REASONS,
    Refused,
    Sessions,
    SignInRequired,
    check_origin,
    read_form,
    same_token,
    sessions,
    signed_out,
)

router = APIRouter(prefix="/dashboard", include_in_schema=False)
_SIGNIN_SECONDS = 3600
_HTTP_PROBLEMS = {
    404: "There is no such page.",
    405: "This address is not opened that way: use the dashboard's links and buttons.",
}


def _next_page(value: object) -> str:
    """Where to go after signing in: a dashboard page of this service, nothing else."""
    if not isinstance(value, str):
        return "/dashboard"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/dashboard") or "\\" in value:
        return "/dashboard"
    return value


@router.get("")
async def home(viewer: SignedIn) -> Response:
    return RedirectResponse("/dashboard/posts", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str = "/dashboard") -> Response:
    return _login_form(request, next, None, status=200)


def _login_form(request: Request, next_page: str, problem: str | None, status: int) -> Response:
    token = secrets.token_urlsafe(24)
    problem = problem or SIGN_IN_REASONS.get(request.query_params.get("reason", ""))
    response = render(
        request,
        None,
        "login.html",
        status=status,
        csrf=token,
        next=_next_page(next_page),
        problem=problem,
    )
    sessions(request).set_cookie(response, LOGIN_COOKIE, token, _SIGNIN_SECONDS)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    check_origin(request)
    form = await read_form(request)
    next_page = _next_page(form.get("next"))
    if not same_token(form.get("csrf"), sessions(request).cookie(request, LOGIN_COOKIE)):
        return _login_form(request, next_page, "The sign-in form expired; try again.", 403)
    key = form.get("key")
    key = key.strip() if isinstance(key, str) else ""
    if not key:
        return _login_form(request, next_page, "Paste one of your API keys (sk_live_…).", 400)
    async with get_context(request).db.read() as session:
        found = await repository.key_with_user(session, hash_key(key))
    if found is None:
        return _login_form(request, next_page, "No such API key.", 401)
    if found[0].revoked_at is not None:
        return _login_form(request, next_page, "This API key was revoked.", 401)
    jar = sessions(request)
    previous = jar.token_of(jar.cookie(request, COOKIE))
    async with get_context(request).db.transaction() as session:
        if previous is not None:  # this browser's earlier sign-in is replaced, not left open
            await sign_ins.end_token(session, previous)
        token = await sign_ins.open_sign_in(session, found[0].id)
    response = RedirectResponse(next_page, status_code=303)
    jar.set_cookie(response, COOKIE, jar.issue(token), SESSION_SECONDS)
    jar.drop_cookie(response, LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, checked: Checked) -> Response:
    async with get_context(request).db.transaction() as session:
        await sign_ins.end_sign_in(session, checked[0].session_id)
    return signed_out(request, "signed_out")


def install(app: FastAPI, settings: Settings) -> None:
    """The dashboard's routes, stylesheet and page-shaped answers to its refusals."""
    app.state.dashboard_sessions = Sessions(settings.resolved_secret_key, settings.public_base_url)
    app.include_router(router)
    pages = (compose.router, posts.router, keys.router, webhooks.router, integrations.router)
    for page_router in (*pages, account.router):
        app.include_router(page_router)  # compose first: /posts/new before /posts/{post_id}
    app.mount("/dashboard/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")

    async def on_sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/dashboard"
        location = f"/dashboard/login?next={quote(target, safe='')}"
        if exc.reason:
            location += f"&reason={exc.reason}"
        response = RedirectResponse(location, status_code=303)
        sessions(request).drop_cookie(response, COOKIE)
        return response

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        viewer = getattr(request.state, "viewer", None)
        return render(request, viewer, "problem.html", status=exc.status, problem=exc.message)

    app.add_exception_handler(SignInRequired, on_sign_in)
    app.add_exception_handler(Refused, on_refused)
    _pages_for_http_errors(app)


def _pages_for_http_errors(app: FastAPI) -> None:
    """A missing page or a wrong method under /dashboard answers as the problem page, with the
    status and `Allow` the API's handler gives, not as the API's JSON envelope."""
    api_answer = app.exception_handlers[HTTPException]

    async def on_http(request: Request, exc: Exception) -> Response:
        answer = api_answer(request, exc)
        answer = await answer if inspect.isawaitable(answer) else answer
        path = request.url.path
        if path != PATH and not path.startswith(PATH + "/"):
            return answer
        status = answer.status_code
        message = _HTTP_PROBLEMS.get(status, "This request could not be answered.")
        viewer = getattr(request.state, "viewer", None)
        page = render(request, viewer, "problem.html", status=status, problem=message)
        if "allow" in answer.headers:
            page.headers["Allow"] = answer.headers["allow"]
        return page

    app.add_exception_handler(HTTPException, on_http)

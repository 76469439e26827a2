"""API keys: the user's keys, a new one, and revoking one after a confirmation page.

A new key is shown once: the form's answer redirects to `/dashboard/keys/new` with the key
sealed in a cookie for that page only, which the page drops as it shows the key. Reloading
the page then says it was shown already, and reloading never sends the form again (which
would make a second key). Revoking a key ends every dashboard sign-in opened
with it: revoking this session's own key signs the user out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from soku.api import id_or_404
from soku.auth import repository
from soku.auth import service as keys_service
from soku.context import get_context
from soku.dashboard import sign_ins
from soku.dashboard.forms import Checked, PageRoute, SignedIn, field, notice
from soku.dashboard.pages import render
from soku.dashboard.session import (
    NEW_KEY_COOKIE,
    NEW_KEY_PATH,
    NEW_KEY_SECONDS,
    Refused,
    Viewer,
    sessions,
    signed_out,
)
from soku.errors import ValidationFailed

router = APIRouter(prefix="/dashboard/keys", include_in_schema=False, route_class=PageRoute)
DONE = {
    "revoked": "The key was revoked: the API refuses it from now on.",
    "shown": "A new key is shown once, just after it is made, and not again (Soku keeps "
    "only its hash). If you did not copy it, revoke it and make another.",
}


@router.get("")
async def list_keys(request: Request, viewer: SignedIn) -> Response:
    return await _keys_page(request, viewer, notice=notice(request, DONE))


@router.post("")
async def create_key(request: Request, checked: Checked) -> Response:
    (viewer, form), ctx = checked, get_context(request)
    name = field(form, "name")
    try:
        async with ctx.db.transaction() as session:
            user = await repository.user_by_id(session, viewer.user_id)
            if user is None:
                raise Refused(404, "Your user no longer exists.")
            issued = await keys_service.issue_key(session, user, name)
    except ValidationFailed as exc:
        return await _keys_page(request, viewer, status=400, problem=exc.message, name=name)
    response = RedirectResponse(NEW_KEY_PATH, status_code=303)
    sealed = sessions(request).seal_new_key(viewer.session_id, issued.key)
    sessions(request).set_cookie(
        response, NEW_KEY_COOKIE, sealed, NEW_KEY_SECONDS, path=NEW_KEY_PATH
    )
    return response


@router.get("/new")
async def show_new_key(request: Request, viewer: SignedIn) -> Response:
    """The key the form just made, once: the cookie that carried it is dropped."""
    jar = sessions(request)
    sealed = jar.cookie(request, NEW_KEY_COOKIE)
    key = jar.open_new_key(sealed, viewer.session_id) if sealed else None
    if key is None:
        response: Response = RedirectResponse("/dashboard/keys?done=shown", status_code=303)
    else:
        response = await _keys_page(request, viewer, issued=key)
    jar.drop_cookie(response, NEW_KEY_COOKIE, path=NEW_KEY_PATH)
    return response


@router.get("/{key_id}/revoke")
async def confirm_revoke(request: Request, viewer: SignedIn, key_id: str) -> Response:
    target = id_or_404(key_id, "API key")
    async with get_context(request).db.read() as session:
        key = await repository.key_of(session, viewer.user_id, target)
    if key is None:
        raise Refused(404, f"No API key {key_id}.")
    return render(request, viewer, "key_revoke.html", key=key, own=key.id == viewer.key_id)


@router.post("/{key_id}/revoke")
async def revoke_key(request: Request, checked: Checked, key_id: str) -> Response:
    (viewer, _form), target = checked, id_or_404(key_id, "API key")
    async with get_context(request).db.transaction() as session:
        await keys_service.revoke_key_of(session, viewer.user_id, target)
        await sign_ins.end_sign_ins_of_key(session, target)
    if target != viewer.key_id:
        return RedirectResponse("/dashboard/keys?done=revoked", status_code=303)
    return signed_out(request, "own_key_revoked")


async def _keys_page(
    request: Request, viewer: Viewer, *, status: int = 200, **context: Any
) -> Response:
    async with get_context(request).db.read() as session:
        keys = await repository.keys_of(session, viewer.user_id)
    return render(request, viewer, "keys.html", status=status, keys=keys, **context)

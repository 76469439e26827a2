"""The Account page: the user, their subscription, and their open sign-ins (all of their keys),
each of which can be ended here; "Sign out everywhere else" ends all but this browser's.

These forms are CSRF-checked but not admitted as API calls (no subscription check, no rate
limit): they stand for no `/v1` call and only take access away, which a user whose
subscription has lapsed must still be able to do (see docs/dashboard.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from soku.api import id_or_404
from soku.auth import repository
from soku.context import get_context
from soku.dashboard import sign_ins
from soku.dashboard.forms import Checked, PageRoute, SignedIn, notice
from soku.dashboard.pages import render
from soku.dashboard.session import Refused, SignInRequired, signed_out

router = APIRouter(prefix="/dashboard/account", include_in_schema=False, route_class=PageRoute)
DONE = {
    "ended": "That sign-in has ended: its browser has to sign in again.",
    "ended_others": "Every other sign-in has ended: only this browser is signed in now.",
}


@router.get("")
async def account(request: Request, viewer: SignedIn) -> Response:
    async with get_context(request).db.read() as session:
        user = await repository.user_by_id(session, viewer.user_id)
        open_ = await sign_ins.live_sign_ins_of_user(session, viewer.user_id)
    return render(
        request,
        viewer,
        "account.html",
        user=user,
        sign_ins=open_,
        notice=notice(request, DONE),
        seen_every=int(sign_ins.SEEN_EVERY.total_seconds() // 60),
    )


@router.post("/sign-ins/{sign_in_id}/end")
async def end_sign_in(request: Request, checked: Checked, sign_in_id: str) -> Response:
    """Ends one of the user's sign-ins; this browser's own is a sign-out."""
    viewer, target = checked[0], id_or_404(sign_in_id, "open sign-in")
    async with get_context(request).db.transaction() as session:
        ended = await sign_ins.end_live_sign_in_of_user(session, viewer.user_id, target)
    if not ended:
        raise Refused(404, f"No open sign-in {sign_in_id}.")
    if target == viewer.session_id:
        return signed_out(request, "signed_out")
    return RedirectResponse("/dashboard/account?done=ended", status_code=303)


@router.post("/sign-ins/end-others")
async def end_other_sign_ins(request: Request, checked: Checked) -> Response:
    viewer = checked[0]
    async with get_context(request).db.transaction() as session:
        ended = await sign_ins.end_other_sign_ins_of_user(
            session, viewer.user_id, viewer.session_id
        )
    if ended is None:  # another browser of the user ended this one first
        raise SignInRequired("ended")
    return RedirectResponse("/dashboard/account?done=ended_others", status_code=303)

"""What the pages share beyond the shell: the route class that turns a service's refusal into a
page, reading a form's fields, and placing a validation error's problems next to its fields."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from soku.auth.dependencies import Principal, admit_key
from soku.context import get_context
from soku.dashboard.session import Refused, Viewer, checked_form, current_viewer
from soku.errors import ApiError

MAX_FIELD = 100_000  # characters of one field: more is refused, not cut
SignedIn = Annotated[Viewer, Depends(current_viewer)]  # a page's viewer
Checked = Annotated[tuple[Viewer, FormData], Depends(checked_form)]  # a form's, CSRF checked


async def admitted_form(request: Request, checked: Checked) -> tuple[Viewer, FormData]:
    """A form that stands for an API call (cancel, a webhook's ping, …), admitted as the API
    admits that call with the session's key: refused while the subscription is inactive, and
    counted under the key's plan."""
    viewer = checked[0]
    known = Principal(viewer.user_id, viewer.email, viewer.key_id, viewer.plan)
    await admit_key(request, get_context(request), known, viewer.subscription, None)
    return checked


Admitted = Annotated[tuple[Viewer, FormData], Depends(admitted_form)]


class PageRoute(APIRoute):
    """A dashboard route: an error a service raises (the API's `NotFound`, `Conflict`, …)
    answers as the problem page with its status and message, never as a JSON envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handle(request)
            except ApiError as exc:
                raise Refused(exc.status, exc.message) from exc

        return page


def field(form: FormData, name: str) -> str:
    """One text field, "" when absent; a file where text was expected is refused."""
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused(400, f"The field {name} must be text.")
    if len(value) > MAX_FIELD:
        raise Refused(413, f"The field {name} is too long.")
    return value


def fields(form: FormData, name: str) -> list[str]:
    """Every value of a repeated field (checkboxes), in the order sent."""
    values = form.getlist(name)
    if not all(isinstance(v, str) and len(v) <= MAX_FIELD for v in values):
        raise Refused(400, f"The field {name} must be text.")
    return [str(v) for v in values]


def scheduled_value(local: str, offset: str) -> str | None:
    """A `datetime-local` input and a UTC offset as the ISO 8601 text the API takes
    (`2026-03-02T09:00` and `+05:30` → `2026-03-02T09:00:00+05:30`); None when no time is
    given. The service checks the result as it checks the API's `scheduledTime`."""
    local, offset = local.strip(), offset.strip() or "Z"
    if not local:
        return None
    if len(local) == len("2026-03-02T09:00"):
        local += ":00"
    return local + offset


def problems_by_slot(
    exc: ApiError, slot_of: Callable[[Mapping[str, Any]], str]
) -> dict[str, list[str]]:
    """The messages of a refusal, grouped by the form's slot each is about (`slot_of` of the
    problem); a refusal that lists no problems goes to the slot of its own details."""
    listed = exc.details.get("errors") or [{**exc.details, "message": exc.message}]
    for extra in exc.details.get("problems") or []:  # missing_account names each target
        listed = [*listed, extra]
    grouped: dict[str, list[str]] = {}
    for problem in listed:
        if isinstance(problem, Mapping):
            message = str(problem.get("message") or exc.message)
            grouped.setdefault(slot_of(problem), []).append(message)
    return grouped


def notice(request: Request, known: Mapping[str, str]) -> str | None:
    """The fixed message a redirect named with `?done=` (never text from the query itself)."""
    return known.get(request.query_params.get("done", ""))

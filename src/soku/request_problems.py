"""Turning what FastAPI and pydantic report about a request into our validation problems."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from soku.errors import ApiError, ValidationFailed


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or "body"


_REASONS = {
    "missing": "required",
    "json_invalid": "invalid_json",
    "extra_forbidden": "unknown_field",
    "model_attributes_type": "invalid_type",
    "dict_type": "invalid_type",
    # pydantic's names for the rest, in the short words the body's own checks use
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "int_parsing": "invalid_type",
    "int_from_float": "invalid_type",
    "float_parsing": "invalid_type",
    "bool_parsing": "invalid_type",
    "enum": "invalid_value",
    "literal_error": "invalid_value",
    "string_too_long": "too_long",
    "string_too_short": "too_short",
    "string_unicode": "invalid_characters",
}


_UNION_TAGS = frozenset({"str", "PlatformTarget"})
_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type"})


def validation_problems(exc: RequestValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as our problems; a union's per-branch errors become one problem."""
    problems: dict[str, dict[str, str]] = {}
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        kind = str(err.get("type", "invalid"))
        reason = _REASONS.get(kind) or _reason_by_family(kind)
        if kind == "json_invalid":
            problems["body"] = {
                "field": "body",
                "reason": reason,
                "message": "The request body is not valid JSON.",
            }
            continue
        if loc and loc[0] in ("query", "path", "header"):
            loc = loc[1:]
        field = _field_of(tuple(p for p in loc if str(p) not in _UNION_TAGS))
        message = f"{field}: {err.get('msg', 'invalid')}"
        if kind == "value_error" and "Expected UploadFile" in message:  # names a Python class
            reason = "invalid_type"
            message = f"{field} must be a file (a form part with a filename), not a text value."
        if any(str(p) in _UNION_TAGS for p in loc):
            if not _speaks_for_the_entry(loc, kind, err.get("input")):
                continue
            if loc[-1] in _UNION_TAGS:
                reason = "invalid_type"
                message = (
                    f"{field} must be a platform name or an object with platform and accountId."
                )
        problems.setdefault(field, {"field": field, "reason": reason, "message": message})
    return list(problems.values())


def _reason_by_family(kind: str) -> str:
    if kind.startswith(("datetime_", "date_", "time_", "timezone_")) and kind != "datetime_type":
        return "invalid_format"
    return "invalid_type" if kind.endswith("_type") else kind


def _speaks_for_the_entry(loc: tuple[Any, ...], kind: str, value: Any) -> bool:
    """A platform entry matches neither `str` nor `PlatformTarget`, and pydantic reports both
    attempts. An object was meant as a target: only its own field errors say what is wrong.
    Anything else: one problem, from the `str` attempt."""
    tag = str(loc[-1])
    if tag == "str":
        return not isinstance(value, dict)
    return not (tag == "PlatformTarget" and kind in _NOT_AN_OBJECT)


# FastAPI's HTTPException when reading or decoding the body fails in any other way than a
# JSONDecodeError (which becomes a RequestValidationError).
BODY_PARSE_ERROR = "There was an error parsing the body"


def unparsable_body(cause: BaseException) -> ApiError:
    """A body FastAPI could not decode, as the problem it is."""
    if isinstance(cause, ApiError):  # raised while reading the body (PayloadTooLarge)
        return cause
    if isinstance(cause, UnicodeDecodeError):
        why = "it is not UTF-8"
    elif isinstance(cause, RecursionError):
        why = "it is nested too deeply"
    else:
        why = "it can't be parsed"
    return ValidationFailed.from_problems(
        [
            {
                "field": "body",
                "reason": "invalid_json",
                "message": f"The request body is not valid JSON: {why}.",
            }
        ]
    )


def unreadable_body(detail: str) -> ApiError:
    """Any other body Starlette refuses (a multipart form without its boundary): a 400 is one
    of the contract's codes, `validation_error` naming the body, not a `bad_request`."""
    message = f"The request body can't be read: {detail.rstrip('.')}."
    return ValidationFailed.from_problems(
        [{"field": "body", "reason": "invalid_body", "message": message}]
    )

"""Reading a Graph request in the Facebook fake: the version in its path, and its parameters.

Parameters come as query, form (files as bytes) or JSON; the helpers read the values they
carry (fields, flags, attached media, times) and refuse malformed ones with Graph's error 100.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from fastapi import Request
from PIL import Image, UnidentifiedImageError
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import UploadFile

from soku.sandbox.graph import invalid_parameter

_ATTACHED = re.compile(r"^attached_media\[(\d+)\]$")


class _Version(Convertor[str]):
    """A Graph API version segment, `v25.0`; other first segments are the fake's web pages."""

    regex = r"v[0-9]+\.[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graph_version", _Version())
G = "/{version:graph_version}"


async def read_params(request: Request) -> dict[str, Any]:
    """Query parameters, then the body's (form, multipart or JSON); files as bytes."""
    params: dict[str, Any] = dict(request.query_params)
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise invalid_parameter("(#100) The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise invalid_parameter("(#100) The request body must be a JSON object")
        params.update(body)
    elif kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        for key, value in form.multi_items():
            params[key] = await value.read() if isinstance(value, UploadFile) else value
    return params


def requested_fields(params: dict[str, Any]) -> set[str]:
    """Top-level names in `fields=a,b{c,d},e` (what is inside braces is not filtered)."""
    text, depth, names, current = str(params.get("fields") or ""), 0, set(), ""
    for char in text + ",":
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            names.add(current.strip().partition(".")[0])
            current = ""
        elif depth == 0:
            current += char
    return {name for name in names if name}


def check_fields(fields: set[str], known: frozenset[str], node: str) -> None:
    for name in sorted(fields - known):
        raise invalid_parameter(f"(#100) Tried accessing nonexisting field ({name}) on node "
                                f"type ({node})")  # fmt: skip


def flag(params: dict[str, Any], name: str, default: bool = True) -> bool:
    value = params.get(name, default)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0"):
        return False
    raise invalid_parameter(f"(#100) Param {name} must be a boolean")


def text_param(params: dict[str, Any], *names: str) -> str:
    for name in names:
        value = params.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise invalid_parameter(f"(#100) Param {name} must be a string")
            return value
    return ""


def attached_ids(params: dict[str, Any]) -> list[str]:
    """The media_fbid of each `attached_media[i]` (form) or `attached_media` list (JSON)."""
    items: list[Any] = []
    whole = params.get("attached_media")
    if isinstance(whole, str):
        try:
            whole = json.loads(whole)
        except ValueError:
            raise invalid_parameter("(#100) param attached_media must be an array") from None
    if isinstance(whole, list):
        items += whole
    indexed = [(int(m[1]), v) for k, v in params.items() if (m := _ATTACHED.match(k))]
    items += [value for _, value in sorted(indexed)]
    ids = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except ValueError:
                item = None
        if not isinstance(item, dict) or not item.get("media_fbid"):
            raise invalid_parameter(f"(#100) param attached_media[{index}] must be an object "
                                    "with a media_fbid")  # fmt: skip
        ids.append(str(item["media_fbid"]))
    return ids


def image_ok(data: bytes) -> bool:
    """Whether a photo's bytes open as an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError):
        return False
    return True

"""Instagram's Graph errors in our terms: Meta's mapping (`meta_errors`), plus the subcodes
Instagram's error table gives a meaning of their own (instagram.md, "Error model").

- 4 / 2207051 (restricted, suspected spam) is not a throttle although its code is 4:
  permanent, the user has to see it;
- 24 / 2207008 (container temporarily unavailable) is worth a retry after a minute;
- 9 / 2207042 (the 24-hour publishing limit) is a rate limit whose end Instagram does not
  say: retried after an hour, not at the usual backoff that would spend every attempt;
- 9004 / 2207052 (media could not be fetched from its URL) and the media checks (36000-36004,
  352 / 2207026, 100 / 2207028 and 2207040) are permanent, with a code that says which;
- 25 / 2207050 (account restricted or inactive) is permanent.
"""

from __future__ import annotations

import httpx

from soku.platforms.connector import ErrorKind, PlatformError
from soku.platforms.meta_errors import graph_error

LABEL = "Instagram"
CONTAINER_RETRY = 60.0  # instagram.md: "retry in 30 s-2 min"
PUBLISHING_LIMIT_RETRY = 3600.0  # a moving 24 h window: some room frees within the hour
# Subcodes whose refusal no retry changes, by the code we give them.
PERMANENT_SUBCODES = {
    2207051: "restricted",
    2207050: "account_restricted",
    2207052: "media_fetch_failed",
    2207004: "image_too_large",
    2207005: "unsupported_image",
    2207009: "aspect_ratio",
    2207010: "caption_too_long",
    2207026: "unsupported_video",
    2207028: "carousel_size",
    2207040: "too_many_mentions",
    2207057: "thumb_offset",
    2207023: "unknown_media_type",
}


def instagram_error(failure: httpx.Response | httpx.HTTPError) -> PlatformError:
    """A failed Instagram call as a PlatformError."""
    error = graph_error(failure, LABEL)
    subcode = _subcode(error.raw)
    if subcode in PERMANENT_SUBCODES:
        error.kind, error.code, error.retry_after = (
            ErrorKind.permanent,
            PERMANENT_SUBCODES[subcode],
            None,
        )
    elif subcode == 2207042:
        error.kind, error.code = ErrorKind.rate_limited, "publishing_limit"
        error.retry_after = error.retry_after or PUBLISHING_LIMIT_RETRY
    elif subcode == 2207008:
        error.kind, error.code = ErrorKind.server_error, "container_unavailable"
        error.retry_after = error.retry_after or CONTAINER_RETRY
    return error


def _subcode(raw: object) -> int | None:
    error = raw.get("error") if isinstance(raw, dict) else None
    value = error.get("error_subcode") if isinstance(error, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None

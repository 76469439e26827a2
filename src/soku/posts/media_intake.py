"""A post's media, fetched and stored when the post is accepted (scheduled ones too).

So a post never fails later because a link died. Our own stored URLs are used as they are;
every other URL is fetched, all at once, within the total time cap. Any failure answers
`upload_failed` naming every URL that failed, and the post is not created. The fetched
files are pinned (soku.media.pins) until the post's transaction writes their media rows.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from soku.context import AppContext
from soku.errors import UploadFailed, ValidationFailed
from soku.media import repository as media_repo
from soku.media import service as media_service
from soku.media.models import Media
from soku.media.pins import Pins
from soku.platforms.base import ContentDraft
from soku.platforms.media_limits import check_files


@dataclass
class MediaPlan:
    """The post's media in order; `new` rows are written with the post."""

    ordered: list[Media] = field(default_factory=list)
    new: list[Media] = field(default_factory=list)
    known: dict[uuid.UUID, str] = field(default_factory=dict)  # stored before: id, URL given
    pins: Pins | None = None  # the fetched files' (`new`)

    @property
    def ids(self) -> list[str]:
        return [str(m.id) for m in self.ordered]

    def write_new(self, connection: Connection) -> None:
        """In the post's transaction: the fetched media's rows, which take over their pins."""
        if not self.new:
            return
        if self.pins is not None:
            self.pins.release_in(connection)
        with Session(bind=connection) as session:  # joins the connection's transaction
            session.add_all(self.new)
            session.flush()


async def take_media(
    ctx: AppContext, user_id: uuid.UUID, draft: ContentDraft, pins: Pins
) -> MediaPlan:
    urls = list(draft.image_urls or draft.video_urls)
    plan = MediaPlan(pins=pins)
    if not urls:
        return plan
    tokens = {url: media_service.token_of(ctx, url) for url in urls}
    async with ctx.db.read() as session:
        known = await media_repo.by_tokens(session, user_id, [t for t in tokens.values() if t])
    missing = list(dict.fromkeys(u for u in urls if tokens[u] not in known))
    await _refuse_deleted(ctx, {u: t for u in missing if (t := tokens[u])})
    fetched = await _fetch_all(ctx, user_id, missing, pins)
    for url in urls:
        token = tokens[url]
        plan.ordered.append(known[token] if token in known else fetched[url])
        if token in known:
            plan.known[known[token].id] = url
    _check_kinds(urls, plan.ordered, draft)
    plan.new = list(fetched.values())
    return plan


def check_limits(plan: MediaPlan, platforms: list[str], draft: ContentDraft) -> None:
    """Each target platform's limits on the fetched files (type, bytes, frame size, duration,
    frame rate: `soku.platforms.media_limits`); `validation_error` listing every refusal,
    each naming the request field of its file (`ContentDraft.media_fields`)."""
    names = list(draft.media_fields)
    problems = [
        {
            "platform": found.violation.platform,
            "field": names[found.index],
            "reason": found.violation.reason,
            "message": found.violation.message,
        }
        for platform in dict.fromkeys(platforms)
        for found in check_files(platform, plan.ordered, names)
    ]
    if problems:
        raise ValidationFailed.from_problems(problems)


def check_still_stored(connection: Connection, plan: MediaPlan) -> None:
    """In the post's transaction: the media found before it are still there. A DELETE of
    one committed meanwhile saw no post using it; after this read (which locks the rows on
    PostgreSQL) a DELETE waits for the post and then sees it."""
    if not plan.known:
        return
    stmt = select(Media.id).where(Media.id.in_(list(plan.known))).with_for_update(read=True)
    found = set(connection.execute(stmt).scalars())
    gone = [url for media_id, url in plan.known.items() if media_id not in found]
    if gone:
        raise _not_stored(gone)


async def _refuse_deleted(ctx: AppContext, own: dict[str, str]) -> None:
    """Our own URLs whose media is gone: a fetch could only fail, and on a private address
    it would be refused as one, which tells the caller nothing."""
    if not own:
        return
    async with ctx.db.read() as session:
        stored = await media_repo.stored_tokens(session, list(own.values()))
    gone = [url for url, token in own.items() if token not in stored]
    if gone:
        raise _not_stored(gone)


async def _fetch_all(
    ctx: AppContext, user_id: uuid.UUID, urls: list[str], pins: Pins
) -> dict[str, Media]:
    if not urls:
        return {}
    results = await asyncio.gather(
        *(_fetch_in_time(ctx, url, pins) for url in urls), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, UploadFailed)]
    if failures:
        first = failures[0]
        listed = [f.details for f in failures]
        message = (
            first.message
            if len(failures) == 1
            else (
                f"{len(failures)} media URLs could not be fetched: "
                + "; ".join(f.message for f in failures[:3])
            )
        )
        raise _failed(message, listed)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return {
        url: media_service.new_media(user_id, incoming)
        for url, incoming in zip(urls, results, strict=True)
        if isinstance(incoming, media_service.Incoming)
    }


async def _fetch_in_time(ctx: AppContext, url: str, pins: Pins) -> media_service.Incoming:
    """One URL within the time cap; all of them run at once, so the cap holds for the post."""
    seconds = ctx.settings.media_fetch_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            return await media_service.fetch_url(ctx, url, pins)
    except TimeoutError:
        message = f"{url} could not be fetched: no complete answer within {seconds:g} s"
        raise media_service.upload_failed(url, "timeout", message) from None


def _check_kinds(urls: list[str], media: list[Media], draft: ContentDraft) -> None:
    wanted = "video" if draft.media_type == "video" else "image"
    wrong = [(url, m) for url, m in zip(urls, media, strict=True) if m.kind != wanted]
    if not wrong:
        return
    url, first = wrong[0]
    message = f"{url} is {_a(first.kind)} ({first.content_type}), but this is {_a(wanted)} post."
    more = f" And {len(wrong) - 1} more (see details.failures)." if len(wrong) > 1 else ""
    raise _failed(message + more, [{"url": u, "reason": "unsupported_format"} for u, _ in wrong])


def _not_stored(gone: list[str]) -> UploadFailed:
    """Our own media URLs whose media is no longer stored."""
    message = f"{gone[0]} is not stored here: its media was deleted, or the URL is mistyped."
    return _failed(message, [{"url": url, "reason": "not_found"} for url in gone])


def _failed(message: str, failures: list[dict[str, Any]]) -> UploadFailed:
    """`upload_failed` naming every URL that failed (`details.failures`), the first one also
    in `details.url` and `details.reason`."""
    return UploadFailed(message, {**failures[0], "failures": failures})


def _a(kind: str) -> str:
    return "an image" if kind == "image" else f"a {kind}"

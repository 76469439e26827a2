"""How the Facebook fake shows its objects: posts, photos and videos with Graph's fields.

Also the fake's own view of a post, for `/_inspect/posts`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from soku.sandbox.facebook_params import check_fields
from soku.sandbox.facebook_state import FakeState, Photo, Post, Video

# The fields each node answers; asking for another is error 100, as on Graph.
POST_FIELDS = frozenset({"id", "message", "created_time", "updated_time", "permalink_url",
                         "attachments", "is_published", "from"})  # fmt: skip
PHOTO_FIELDS = frozenset({"id", "created_time", "name", "link", "page_story_id"})
VIDEO_FIELDS = frozenset({"id", "description", "title", "created_time", "updated_time",
                          "published", "permalink_url", "status", "length"})  # fmt: skip


def video_link(video: Video) -> str:
    """A video's `permalink_url`: Graph gives videos a path on www.facebook.com."""
    return f"/{video.page_id}/videos/{video.id}/"


def video_status(video: Video) -> dict[str, Any]:
    ready, failed = video.state == "ready", video.state == "error"
    uploading: dict[str, Any] = {"status": "error" if video.upload_error else "complete"}
    if video.upload_error:
        uploading["errors"] = [{"code": 6000, "message": "The video file could not be "
                                f"downloaded from file_url: {video.upload_error}."}]  # fmt: skip
    processing: dict[str, Any] = {"status": "complete" if ready else "not_started"}
    if video.state == "processing":
        processing["status"] = "in_progress"
    elif failed and not video.upload_error:
        processing["status"] = "error"
        processing["errors"] = [{"code": 1363008, "message": "The video could not be "
                                 "processed: unsupported format."}]  # fmt: skip
    published = video.post_id is not None
    publishing = {"status": "complete" if published else "not_started",
                  "publish_status": "published" if published else "not_published"}  # fmt: skip
    return {"video_status": video.state, "uploading_phase": uploading,
            "processing_phase": processing, "publishing_phase": publishing,
            "processing_progress": 100 if ready else 0}  # fmt: skip


def video_values(video: Video) -> dict[str, Any]:
    return {"id": video.id, "description": video.description, "title": video.title,
            "created_time": graph_time(video.created_at),
            "updated_time": graph_time(video.created_at), "published": video.published,
            "permalink_url": video_link(video), "status": video_status(video),
            "length": 1.0}  # fmt: skip


def photo_values(photo: Photo, base: str) -> dict[str, Any]:
    values: dict[str, Any] = {"id": photo.id, "created_time": graph_time(photo.created_at),
                              "link": f"{base}/photo/?fbid={photo.id}"}  # fmt: skip
    if photo.caption:
        values["name"] = photo.caption
    if photo.post_id:
        values["page_story_id"] = photo.post_id
    return values


def graph_time(moment: dt.datetime) -> str:
    """Graph's time format: `2026-01-02T03:04:05+0000`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def post_url(state: FakeState, base: str, post: Post) -> str:
    if post.video_id:
        return base + video_link(state.videos[post.video_id])
    return f"{base}/{post.page_id}/posts/{post.id.rpartition('_')[2]}"


def node_view(
    state: FakeState, item: Post | Photo | Video, fields: set[str], base: str
) -> dict[str, Any]:
    """A post, a photo or a video with the fields asked for (a few by default)."""
    if isinstance(item, Post):
        return post_view(state, item, fields or {"id", "message", "created_time"}, base)
    if isinstance(item, Photo):
        known, values = PHOTO_FIELDS, photo_values(item, base)
        fields = fields or {"id", "created_time", "name"}
    else:
        known, values = VIDEO_FIELDS, video_values(item)
        fields = fields or {"id", "description", "created_time"}
    check_fields(fields, known, type(item).__name__)
    return {name: values[name] for name in ("id", *sorted(fields)) if name in values}


def post_view(state: FakeState, post: Post, fields: set[str], base: str) -> dict[str, Any]:
    check_fields(fields, POST_FIELDS, "Post")
    values: dict[str, Any] = {
        "id": post.id,
        "created_time": graph_time(post.created_at),
        "updated_time": graph_time(post.created_at),
        "permalink_url": post_url(state, base, post),
        "is_published": True,
        "from": {"name": state.page_names.get(post.page_id, ""), "id": post.page_id},
    }
    if post.message:
        values["message"] = post.message
    if post.photo_ids or post.video_id:
        values["attachments"] = {"data": [attachment(state, post, base)]}
    return {name: values[name] for name in ("id", *sorted(fields)) if name in values}


def attachment(state: FakeState, post: Post, base: str) -> dict[str, Any]:
    """A post's attachment as Graph shows it: a photo, an album of photos, or a video."""
    url = post_url(state, base, post)
    if post.video_id:
        target = {"id": post.video_id, "url": url}
        return {"media_type": "video", "type": "video_inline", "target": target, "url": url}
    photos = [
        {"media_type": "photo", "type": "photo", "target": {"id": photo_id}, "url": url}
        for photo_id in post.photo_ids
    ]
    if len(photos) == 1:
        return photos[0]
    album = {"id": post.id.rpartition("_")[2], "url": url}
    return {"media_type": "album", "type": "album", "target": album, "url": url,
            "subattachments": {"data": photos}}  # fmt: skip


def inspected(state: FakeState, post: Post, base: str) -> dict[str, Any]:
    """A post as `/_inspect/posts` shows it: what was sent, and where it can be seen."""
    media = [{"id": p, "kind": "photo", "url": state.photos[p].url} for p in post.photo_ids]
    if post.video_id:
        video = state.videos[post.video_id]
        media.append({"id": video.id, "kind": "video", "url": video.url})
    created, url = graph_time(post.created_at), post_url(state, base, post)
    return {"id": post.id, "page": post.page_id, "text": post.message, "media": media,
            "created_time": created, "url": url}  # fmt: skip

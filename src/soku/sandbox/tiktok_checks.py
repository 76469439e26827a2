"""What the TikTok fake refuses in an init call, as TikTok does (tiktok.md): the privacy level,
the text limits, the chunk plan of a FILE_UPLOAD, the URLs of a PULL_FROM_URL, the caps."""

from __future__ import annotations

from typing import Any

from soku.platforms.text import utf16_length
from soku.sandbox.tiktok_state import Creator, FakeState, TikTokError

MAX_VIDEO_BYTES = 4 * 1024**3
MAX_CHUNKS = 1000
MAX_PHOTOS = 35
LIMITS = {"VIDEO": {"title": 2200}, "PHOTO": {"title": 90, "description": 4000}}


def invalid(message: str) -> TikTokError:
    return TikTokError("invalid_params", message)


def section(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise invalid(f"{name} is required and must be an object.")
    return value


def check_post_info(state: FakeState, creator: Creator, info: dict[str, Any], kind: str) -> None:
    """Privacy level offered, audit rules, the caps, and the text limits (UTF-16 units)."""
    config, level = state.config, info.get("privacy_level")
    if level not in state.privacy_options():
        raise TikTokError("privacy_level_option_mismatch")
    if not config.audited and level != "SELF_ONLY":
        # (U) which of the two codes an unaudited app meets first
        raise TikTokError("unaudited_client_can_only_post_to_private_accounts")
    if state.posted_today(creator.open_id) >= config.posts_per_day:
        raise TikTokError("spam_risk_too_many_posts")
    for name, limit in LIMITS[kind].items():
        text = info.get(name, "")
        if not isinstance(text, str) or utf16_length(text) > limit:
            raise invalid(f"post_info.{name} must be text of at most {limit} characters.")


def check_file_upload(state: FakeState, source: dict[str, Any]) -> tuple[int, int, int]:
    """(video_size, chunk_size, total_chunk_count) of a FILE_UPLOAD, as the transfer guide has
    them: floor(size / chunk) chunks of 5-64 MB, the last up to 128 MB; a small file whole."""
    config = state.config
    size, chunk, count = (_positive(source.get(k)) for k in ("video_size", "chunk_size",
                                                              "total_chunk_count"))  # fmt: skip
    if size > MAX_VIDEO_BYTES:
        raise invalid("video_size must be at most 4 GB.")
    if size < config.min_chunk_bytes:
        if chunk != size or count != 1:
            raise invalid("A video under 5 MB goes as one chunk of video_size bytes.")
        return size, chunk, count
    if not config.min_chunk_bytes <= chunk <= config.max_chunk_bytes:
        raise invalid("chunk_size must be between 5 MB and 64 MB.")
    last = size - (count - 1) * chunk
    if count != size // chunk or not 1 <= count <= MAX_CHUNKS or last > config.max_last_chunk_bytes:
        raise invalid("total_chunk_count must be floor(video_size / chunk_size), 1 to 1000.")
    return size, chunk, count


def check_pulled(state: FakeState, urls: list[Any]) -> list[str]:
    """URLs TikTok may pull: http(s) (https only with `require_https`), on a verified prefix."""
    config, checked = state.config, []
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid("Every media URL must be an http(s) URL.")
        if config.require_https and not url.startswith("https://"):
            raise invalid("Every media URL must be an https URL.")
        prefixes = config.verified_prefixes
        if prefixes and not any(url.startswith(prefix) for prefix in prefixes):
            raise TikTokError("url_ownership_unverified")
        checked.append(url)
    return checked


def check_photos(state: FakeState, body: dict[str, Any]) -> tuple[str, list[str], int]:
    """(post_mode, photo_images, photo_cover_index) of a photo post: pulled from URLs only."""
    if body.get("media_type") != "PHOTO":
        raise invalid("media_type must be PHOTO.")
    mode = body.get("post_mode")
    if mode not in ("DIRECT_POST", "MEDIA_UPLOAD"):
        raise invalid("post_mode must be DIRECT_POST or MEDIA_UPLOAD.")
    source = section(body, "source_info")
    if source.get("source") != "PULL_FROM_URL":
        raise invalid("Photos are pulled from URLs only: source must be PULL_FROM_URL.")
    images = source.get("photo_images")
    if not isinstance(images, list) or not 1 <= len(images) <= MAX_PHOTOS:
        raise invalid(f"photo_images must list 1 to {MAX_PHOTOS} URLs.")
    cover = source.get("photo_cover_index", 0)
    if not isinstance(cover, int) or not 0 <= cover < len(images):
        raise invalid("photo_cover_index must be the index of one of photo_images.")
    return str(mode), check_pulled(state, images), cover


def _positive(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise invalid("video_size, chunk_size and total_chunk_count must be positive integers.")
    return value

"""What the Instagram fake refuses in a new container, with the error table's codes
(instagram.md, "Constraints" and "Error model"): a caption over 2200 characters (36004 /
2207010), over 30 hashtags or 20 @ tags (100 / 2207040; the hashtag one is not confirmed),
an unknown `media_type` (100 / 2207023), a caption on a carousel item, a reel in a carousel,
a carousel outside 2-10 children (100 / 2207028); an image that is not a JPEG (36001 /
2207005), over 8 MB (36000 / 2207004), outside 4:5-1.91:1 (36003 / 2207009), or that cannot
be fetched (9004 / 2207052).
"""

from __future__ import annotations

import dataclasses
import io
import re

from PIL import Image, UnidentifiedImageError

from soku.platforms.text import count_hashtags, count_mentions
from soku.sandbox.common import Fetched
from soku.sandbox.graph import GraphError, invalid_parameter
from soku.sandbox.instagram_state import FakeConfig

MEDIA_TYPES = ("IMAGE", "REELS", "VIDEO", "CAROUSEL", "STORIES")
TOO_LARGE = "the file is too large"  # what common.fetch_media says of one over its limit


@dataclasses.dataclass(frozen=True)
class Asked:
    """A container as `POST /{ig-id}/media` asks for it."""

    media_type: str
    caption: str
    url: str | None
    is_carousel_item: bool
    children: list[str]
    image: bool  # the URL is an `image_url`


def asked(params: dict[str, str], config: FakeConfig) -> Asked:
    """The container's parameters, checked as Instagram checks them before it fetches."""
    item = params.get("is_carousel_item", "false").lower() == "true"
    media_type = params.get("media_type", "").upper() or ("IMAGE" if "image_url" in params else "")
    if media_type not in MEDIA_TYPES:
        raise invalid_parameter("(#100) The media type is not supported", 2207023)
    caption = params.get("caption", "")
    _check_caption(caption, config)
    if item and media_type not in ("IMAGE", "VIDEO"):
        raise invalid_parameter("(#100) Only images and videos (not reels) are carousel items")
    if item and caption:
        raise invalid_parameter("(#100) A carousel item takes no caption")
    if media_type == "VIDEO" and not item:
        # Since 2023-07-01 a single feed video is a reel (instagram.md).
        raise invalid_parameter("(#100) The VIDEO media type is for carousel items: use REELS")
    children = [c.strip() for c in params.get("children", "").split(",") if c.strip()]
    if media_type != "CAROUSEL" and children:
        raise invalid_parameter("(#100) Param children is for CAROUSEL only")
    name, url = _url(media_type, params)
    return Asked(media_type, caption, url, item, children, name == "image_url")


def _url(media_type: str, params: dict[str, str]) -> tuple[str, str | None]:
    """The media URL's parameter and value (none for a carousel)."""
    if media_type == "CAROUSEL":
        return "", None
    names: tuple[str, ...] = ("image_url", "video_url")
    if media_type != "STORIES":
        names = ("image_url",) if media_type == "IMAGE" else ("video_url",)
    name = next((name for name in names if params.get(name)), names[0])
    url = params.get(name, "")
    if not re.match(r"^https?://", url):
        raise invalid_parameter(f"(#100) The parameter {' or '.join(names)} is required")
    return name, url


def _check_caption(caption: str, config: FakeConfig) -> None:
    if len(caption) > config.max_caption_length:
        message = f"The caption is longer than {config.max_caption_length} characters"
        raise GraphError(400, 36004, message, 2207010)
    if count_mentions(caption) > config.max_mentions:
        message = f"(#100) The caption has more than {config.max_mentions} @ tags"
        raise invalid_parameter(message, 2207040)
    if count_hashtags(caption) > config.max_hashtags:
        # Not confirmed: the table has no row for too many hashtags; the @-tag one is used.
        message = f"(#100) The caption has more than {config.max_hashtags} hashtags"
        raise invalid_parameter(message, 2207040)


def check_image(url: str, fetched: Fetched, config: FakeConfig) -> None:
    """Refuses an image Instagram would not take, as it says so at once."""
    if not fetched.ok and fetched.detail == TOO_LARGE:
        raise GraphError(400, 36000, "The image is too large (at most 8 MiB)", 2207004)
    if not fetched.ok:
        raise GraphError(400, 9004, f"The media could not be fetched from this URI: {url}",
                         2207052)  # fmt: skip
    try:
        with Image.open(io.BytesIO(fetched.data)) as opened:
            image_format, (width, height) = opened.format, opened.size
    except (UnidentifiedImageError, OSError):
        raise GraphError(400, 36001, "The image format is not supported", 2207005) from None
    if config.jpeg_only and image_format != "JPEG":
        raise GraphError(400, 36001, "Only JPEG images are supported", 2207005)
    ratio = width / max(height, 1)
    if not config.min_aspect_ratio <= ratio <= config.max_aspect_ratio:
        message = f"The aspect ratio {width}:{height} is not supported (4:5 to 1.91:1)"
        raise GraphError(400, 36003, message, 2207009)


def video_detail(fetched: Fetched) -> Fetched:
    """A fetched video, marked `not mp4` when it is no MP4 or MOV (an `ftyp` box first)."""
    if fetched.ok and fetched.data[4:8] != b"ftyp":
        return dataclasses.replace(fetched, detail="not mp4", data=b"")
    return dataclasses.replace(fetched, data=b"")

"""The request bodies the LinkedIn fake accepts, as strict models, and how it reads them."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from soku.sandbox.linkedin_faults import api_error
from soku.sandbox.linkedin_state import MAX_VIDEO_BYTES

_AUTHOR = r"^urn:li:(person|organization):[A-Za-z0-9_-]+$"
_MEDIA = r"^urn:li:(image|video):[A-Za-z0-9_-]+$"
Urn = Annotated[str, Field(pattern=_MEDIA)]
T = TypeVar("T", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MediaRef(_Strict):
    id: Urn
    altText: str | None = Field(default=None, max_length=4086)
    title: str | None = None


class MultiImage(_Strict):
    images: list[MediaRef] = Field(min_length=2, max_length=20)


class Content(_Strict):
    media: MediaRef | None = None
    multiImage: MultiImage | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Content:
        if (self.media is None) == (self.multiImage is None):
            raise ValueError("content takes exactly one of media and multiImage")
        if self.multiImage and any(":video:" in i.id for i in self.multiImage.images):
            raise ValueError("multiImage takes images only")
        return self


class Distribution(_Strict):
    feedDistribution: Literal["MAIN_FEED", "NONE"]
    targetEntities: list[Any] = []
    thirdPartyDistributionChannels: list[Any] = []


class NewPost(_Strict):
    author: str = Field(pattern=_AUTHOR)
    commentary: str = ""
    visibility: Literal["PUBLIC", "CONNECTIONS", "LOGGED_IN"]
    distribution: Distribution
    lifecycleState: Literal["PUBLISHED", "DRAFT"]
    isReshareDisabledByAuthor: bool = False
    content: Content | None = None


class InitImage(_Strict):
    owner: str = Field(pattern=_AUTHOR)


class InitVideo(_Strict):
    owner: str = Field(pattern=_AUTHOR)
    fileSizeBytes: int = Field(ge=1, le=MAX_VIDEO_BYTES)
    uploadCaptions: bool = False
    uploadThumbnail: bool = False


class FinalizeVideo(_Strict):
    video: Urn
    uploadToken: str = ""
    uploadedPartIds: list[str]


class NewMember(_Strict):
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,40}$")
    name: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None


def parse(model: type[T], data: Any) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise api_error(400, "Unable to parse the request body as JSON") from None


def field_of(body: Any, name: str) -> Any:
    return body.get(name) if isinstance(body, dict) else None

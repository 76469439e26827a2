"""Bodies of the Templates API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AspectRatio = Literal["1:1", "4:5", "9:16"]


class TemplateRender(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    templateSlug: str = Field(description="Which template: see `GET /v1/templates`.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="The template's parameters, by name."
    )
    aspectRatio: AspectRatio | None = Field(
        default=None,
        description="1:1 is 1080x1080, 4:5 1080x1350, 9:16 1080x1920; without it, the "
        "template's own size.",
    )


class ParameterView(BaseModel):
    name: str
    description: str
    required: bool
    maxLength: int
    choices: list[str] | None
    default: str | None


class Size(BaseModel):
    width: int
    height: int


class TemplateView(BaseModel):
    slug: str
    description: str
    size: Size = Field(description="Without an aspectRatio.")
    aspectRatios: list[AspectRatio]
    parameters: list[ParameterView]


class TemplateList(BaseModel):
    data: list[TemplateView]

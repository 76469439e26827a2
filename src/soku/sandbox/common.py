"""What every fake platform shares: the fault switches and how it names its own URL."""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, model_validator


class FaultFields(BaseModel):
    """One injected fault, as posted to `/_faults`; each fake adds the calls it can hit (`on`)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = "*"
    status: int | None = Field(default=None, ge=400, le=599)
    error_code: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    delay: float | None = Field(default=None, ge=0)
    accept_then_delay: float | None = Field(default=None, ge=0)
    times: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check_effects(self) -> FaultFields:
        if self.accept_then_delay is not None and getattr(self, "on", None) != "publish":
            raise ValueError("accept_then_delay applies to publish only")
        effects = (self.status, self.error_code, self.delay, self.accept_then_delay)
        if all(effect is None for effect in effects):
            raise ValueError("a fault needs a status, an error_code, a delay or accept_then_delay")
        return self


def public_base(public_url: str, request: Request) -> str:
    """The URL the fake is reached at: as configured, or as this request reached it."""
    if public_url:
        return public_url
    base = request.base_url
    return f"{base.scheme}://{base.netloc}{request.scope.get('root_path', '')}".rstrip("/")

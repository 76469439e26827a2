"""A submission's status, derived from its deliveries."""

from __future__ import annotations

from collections.abc import Iterable

from soku.delivery.models import DeliveryStatus as D
from soku.posts.models import PostStatus

_IN_FLIGHT = {D.processing, D.publishing}
_FINISHED = {D.published, D.failed, D.unknown, D.cancelled}


def derive_status(statuses: Iterable[str]) -> PostStatus:
    found = {D(s) for s in statuses}
    if not found:
        return PostStatus.failed
    if found == {D.cancelled}:
        return PostStatus.cancelled
    if found & _IN_FLIGHT:
        return PostStatus.processing
    if found <= _FINISHED:
        if found <= {D.published, D.cancelled}:
            return PostStatus.published
        if D.published in found:
            return PostStatus.partially_published
        return PostStatus.failed
    if D.published in found or D.failed in found or D.unknown in found:
        return PostStatus.processing
    return PostStatus.queued if D.queued in found else PostStatus.scheduled

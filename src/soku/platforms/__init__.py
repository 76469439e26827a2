"""The eight platforms: what each accepts, checked before a post is stored."""

from __future__ import annotations

from collections.abc import Iterable

from soku.platforms import facebook, instagram, linkedin, snapchat, threads, tiktok, x, youtube
from soku.platforms.base import (
    ContentDraft,
    DeliveryLimits,
    PlatformIntegration,
    PlatformRules,
    RuleViolation,
)

__all__ = [
    "INTEGRATIONS",
    "LIMITS",
    "PLATFORM_NAMES",
    "RULES",
    "ContentDraft",
    "DeliveryLimits",
    "PlatformRules",
    "RuleViolation",
    "check_all",
]

_ALL_RULES: tuple[PlatformRules, ...] = (
    instagram.RULES,
    tiktok.RULES,
    youtube.RULES,
    facebook.RULES,
    x.RULES,
    threads.RULES,
    linkedin.RULES,
    snapchat.RULES,
)

PLATFORM_NAMES: tuple[str, ...] = tuple(rules.name for rules in _ALL_RULES)
RULES: dict[str, PlatformRules] = {rules.name: rules for rules in _ALL_RULES}
_MODULES = (instagram, tiktok, youtube, facebook, x, threads, linkedin, snapchat)
LIMITS: dict[str, DeliveryLimits] = {module.RULES.name: module.LIMITS for module in _MODULES}
# The platforms with a connector and a fake of their own (see PlatformIntegration).
INTEGRATIONS: dict[str, PlatformIntegration] = {
    module.RULES.name: module.INTEGRATION
    for module in _MODULES
    if isinstance(getattr(module, "INTEGRATION", None), PlatformIntegration)
}


def check_all(draft: ContentDraft, platforms: Iterable[str]) -> list[RuleViolation]:
    """Every violation of `draft` on the named platforms.

    Platforms are checked in the given order, each once; unknown names are skipped (the
    request check reports them).
    """
    problems: list[RuleViolation] = []
    seen: set[str] = set()
    for name in platforms:
        rules = RULES.get(name)
        if rules is None or name in seen:
            continue
        seen.add(name)
        problems.extend(rules.check(draft))
    return problems

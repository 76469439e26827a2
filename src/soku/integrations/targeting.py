"""The targeting rule: which connected account each platform entry of a post means."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from soku.errors import MissingAccount, MissingIntegrations, ValidationFailed
from soku.integrations.models import AccountRef
from soku.posts.validation import Target


def resolve_targets(targets: Sequence[Target], accounts: Sequence[AccountRef]) -> list[AccountRef]:
    """One account per target, in order; raises missing_integrations / missing_account."""
    by_platform: dict[str, list[AccountRef]] = defaultdict(list)
    for account in accounts:
        by_platform[account.platform].append(account)
    missing = [t.platform for t in targets if not by_platform[t.platform]]
    if missing:
        names = list(dict.fromkeys(missing))
        raise MissingIntegrations(
            f"The following platforms are not connected: {', '.join(names)}. "
            "Connect them in Settings > Integrations.",
            {"missingPlatforms": names},
        )
    problems: list[dict[str, Any]] = []
    chosen: list[AccountRef] = []
    for target in targets:
        found = _pick(target, by_platform[target.platform], problems)
        if found is not None:
            chosen.append(found)
    if problems:
        first = problems[0]
        raise MissingAccount(first.pop("message"), {**first, "problems": problems[1:]})
    _reject_same_account_twice(targets, chosen)
    return chosen


def _pick(
    target: Target, candidates: list[AccountRef], problems: list[dict[str, Any]]
) -> AccountRef | None:
    names = [a.account_id for a in candidates]
    if target.account_id is None:
        if len(candidates) == 1:
            return candidates[0]
        problems.append(
            {
                "platform": target.platform,
                "accountId": None,
                "availableAccountIds": names,
                "message": f"{len(candidates)} {target.platform} accounts are connected "
                f"({', '.join(names)}); target one with "
                f'{{"platform": "{target.platform}", "accountId": "…"}}.',
            }
        )
        return None
    for account in candidates:
        if account.account_id == target.account_id:
            return account
    problems.append(
        {
            "platform": target.platform,
            "accountId": target.account_id,
            "availableAccountIds": names,
            "message": f"No {target.platform} account with accountId {target.account_id!r} "
            f"is connected (connected: {', '.join(names)}).",
        }
    )
    return None


def _reject_same_account_twice(targets: Sequence[Target], chosen: list[AccountRef]) -> None:
    seen: set[Any] = set()
    for target, account in zip(targets, chosen, strict=True):
        if account.id in seen:
            raise ValidationFailed.from_problems(
                [
                    {
                        "field": target.field,
                        "reason": "duplicate_target",
                        "message": f"{account.platform} account {account.account_id} is targeted "
                        "more than once.",
                    }
                ]
            )
        seen.add(account.id)

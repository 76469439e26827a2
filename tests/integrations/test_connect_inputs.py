"""What a user or a platform may send a connect flow that the database cannot keep: each is a
message on the Integrations page (never a 500), and no account."""

from __future__ import annotations

import pytest

from soku.integrations.repository import accounts_of
from tests.integrations.conftest import Site, problem_of


@pytest.mark.parametrize("platform", ["x", "instagram"])
@pytest.mark.parametrize("account_id", ["a\x00b", "line\nbreak", "x\u202emain"])
async def test_an_account_id_with_control_characters_is_refused(
    site: Site, platform: str, account_id: str
) -> None:
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    answer = await browser.start(platform, account_id)
    assert answer.status_code == 400, answer.text
    assert "control or invisible characters" in problem_of(answer.text)
    async with site.env.ctx.db.read() as session:
        assert await accounts_of(session, caller.user_id) == []

"""Mailbox numbers are never handed out twice, also across process restarts."""

from __future__ import annotations

import subprocess
import sys

from orm.models import MailAccount

SCRIPT = """
import asyncio, sys
from mailaccounts.database import database
from resolvers import accounts
from resolvers.tokens import ensure_tenant

async def main(url, email, delete):
    async with database(url, global_fallback=False):
        tenant = await ensure_tenant("acme")
        account = await accounts.create_account(tenant.id, email, "Vertrieb")
        print(account.mailbox_number)
        if delete:
            await accounts.delete_account(tenant.id, account.id, email)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] == "delete"))
"""


def create_in_new_process(url: str, email: str, delete: bool) -> int:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, email, "delete" if delete else "keep"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return int(result.stdout.strip().splitlines()[-1])


async def test_number_of_deleted_newest_account_is_not_reused_after_restart(db: str) -> None:
    """Delete the newest account, restart: the next account still gets a higher number."""
    first = create_in_new_process(db, "eins@firma.example", delete=False)
    deleted = create_in_new_process(db, "zwei@firma.example", delete=True)
    after_restart = create_in_new_process(db, "drei@firma.example", delete=False)
    assert first < deleted < after_restart
    assert sorted(await MailAccount.all().values_list("mailbox_number", flat=True)) == [first, after_restart]

"""`mailaccounts user unlock` and `user reset-password`, and `serve` trusting X-Forwarded-For only as configured."""

from __future__ import annotations

import asyncio
import os
import subprocess

import httpx

from orm.models import DashboardUser as UserRow
from resolvers.sign_in import SignInLimits, SignInStatus, attempt_sign_in
from tests.support.dashboard import PASSWORD, DashboardUser, csrf_from, sign_in
from tests.support.serve import CLI, run, serve

WRONG = "falsches-passwort"
# The CLI reads LOGIN_WINDOW from the environment (default 900): the same window, so the same counters.
LIMITS = SignInLimits(per_address=1000, per_user=3, window=900)


def cli(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command against the test's database (SQLite or PostgreSQL)."""
    return subprocess.run(
        [*CLI, *args],
        env={**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "s" * 40},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def lock(email: str) -> None:
    for _ in range(LIMITS.per_user):
        await attempt_sign_in(email, WRONG, "192.0.2.1", LIMITS)
    assert (await UserRow.get(email_normalized=email)).locked_at is not None


async def test_user_unlock_lifts_the_lock_and_forgets_the_failures(db: str, user: DashboardUser) -> None:
    """`user unlock --email` lifts the lock; the right password then signs in; unknown addresses are an error."""
    await lock(user.email)
    unlocked = await asyncio.to_thread(cli, db, "user", "unlock", "--email", user.email.upper())
    assert unlocked.returncode == 0, unlocked.stderr
    assert "unlocked" in unlocked.stderr
    assert (await UserRow.get(email_normalized=user.email)).locked_at is None
    assert (await attempt_sign_in(user.email, PASSWORD, "192.0.2.2", LIMITS)).status is SignInStatus.SIGNED_IN
    again = await asyncio.to_thread(cli, db, "user", "unlock", "--email", user.email)
    assert again.returncode == 0 and "was not locked" in again.stderr
    unknown = await asyncio.to_thread(cli, db, "user", "unlock", "--email", "niemand@acme.example")
    assert unknown.returncode == 2 and "no dashboard user" in unknown.stderr


async def test_reset_password_prints_a_new_one_ends_sessions_and_lifts_the_lock(
    db: str, signed_in: httpx.AsyncClient, user: DashboardUser
) -> None:
    """`user reset-password` prints a generated password that signs in; the old one and old sessions stop working."""
    await lock(user.email)
    reset = await asyncio.to_thread(cli, db, "user", "reset-password", "--email", user.email)
    assert reset.returncode == 0, reset.stderr
    new_password = reset.stdout.strip().splitlines()[-1]
    assert len(new_password) >= 20 and new_password != PASSWORD
    assert (await UserRow.get(email_normalized=user.email)).locked_at is None
    stale = await signed_in.get("/mail-accounts")
    assert stale.status_code == 303 and stale.headers["location"].startswith("/login")
    assert (await sign_in(signed_in, user.email, PASSWORD)).status_code == 401
    assert (await sign_in(signed_in, user.email, new_password)).status_code == 303


async def test_reset_password_from_stdin(db: str, user: DashboardUser) -> None:
    """--password-stdin sets the given password; a short one and an unknown user are refused with exit status 2."""
    given = await asyncio.to_thread(
        cli, db, "user", "reset-password", "--email", user.email, "--password-stdin", stdin="ein-neues-passwort\n"
    )
    assert given.returncode == 0 and given.stdout == "", given.stderr
    signed = await attempt_sign_in(user.email, "ein-neues-passwort", "192.0.2.3", LIMITS)
    assert signed.status is SignInStatus.SIGNED_IN
    short = await asyncio.to_thread(
        cli, db, "user", "reset-password", "--email", user.email, "--password-stdin", stdin="kurz\n"
    )
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    unknown = await asyncio.to_thread(
        cli, db, "user", "reset-password", "--email", "niemand@acme.example", "--password-stdin", stdin="x" * 12
    )
    assert unknown.returncode == 2 and "no dashboard user" in unknown.stderr


def _spray(base_url: str, attempts: int) -> list[int]:
    """Failed sign-ins from 127.0.0.1, each claiming another client in X-Forwarded-For; the status codes."""
    statuses = []
    with httpx.Client(base_url=base_url, timeout=10) as http:
        for index in range(attempts):
            token = csrf_from(http.get("/login").text)
            response = http.post(
                "/login",
                data={"csrf_token": token, "email": "niemand@acme.example", "password": WRONG},
                headers={"X-Forwarded-For": f"203.0.113.{index + 1}"},
            )
            statuses.append(response.status_code)
    return statuses


def test_serve_ignores_forwarded_for_unless_configured(env: dict[str, str]) -> None:
    """uvicorn would trust X-Forwarded-For from 127.0.0.1 by default: serve does not, unless FORWARDED_ALLOW_IPS
    names the proxy; then each forwarded client is counted on its own."""
    run("migrate", env=env)
    limited = {**env, "LOGIN_MAX_FAILURES_PER_ADDRESS": "2"}
    with serve(limited) as served:
        assert _spray(served.base_url, 3) == [401, 401, 429]
    with serve({**limited, "FORWARDED_ALLOW_IPS": "127.0.0.1"}) as served:
        assert _spray(served.base_url, 3) == [401, 401, 401]

"""`mailaccounts user create` and the first start of `serve --demo`, which prints working dashboard credentials."""

from __future__ import annotations

import re
import subprocess

import httpx

from tests.support.dashboard import csrf_from
from tests.support.serve import CLI, run, serve


def test_user_create_with_password_from_stdin_and_generated(env: dict[str, str]) -> None:
    """A password comes from stdin or is generated and printed once; a second user with that address is refused."""
    run("migrate", env=env)
    given = subprocess.run(
        [*CLI, "user", "create", "--tenant", "acme", "--email", "chefin@acme.example", "--password-stdin"],
        env=env,
        input="ein-langes-passwort\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert given.returncode == 0, given.stderr
    assert given.stdout == "" and "created for tenant 'acme'" in given.stderr
    generated = run("user", "create", "--tenant", "acme", "--email", "zwei@acme.example", env=env)
    password = generated.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[A-Za-z0-9]{5}(-[A-Za-z0-9]{5}){3}", password)
    again = run("user", "create", "--tenant", "globex", "--email", "CHEFIN@acme.example", env=env, check=False)
    assert again.returncode == 2 and "exists already" in again.stderr
    short = subprocess.run(
        [*CLI, "user", "create", "--tenant", "acme", "--email", "drei@acme.example", "--password-stdin"],
        env=env,
        input="kurz\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode == 2 and "at least 10 characters" in short.stderr


def test_demo_first_start_prints_dashboard_login_that_works(env: dict[str, str]) -> None:
    """serve --demo on an empty database prints URL, email and password; they sign in to the dashboard."""
    run("migrate", env=env)
    with serve(env, "--demo", read_until="Passwort:") as served:
        lines = [line.strip() for line in served.output]
        assert f"{served.base_url}/" in lines
        email = next(line.split()[-1] for line in lines if line.startswith("E-Mail:"))
        password = lines[-1].split()[-1]
        with httpx.Client(base_url=served.base_url, timeout=5) as http:
            login = http.get("/login")
            signed_in = http.post(
                "/login", data={"csrf_token": csrf_from(login.text), "email": email, "password": password}
            )
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/mail-accounts"
            assert "Noch keine Mail-Accounts" in http.get("/mail-accounts").text

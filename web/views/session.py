"""Signing in and out, and lifting a sign-in lock through the mailed link."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from schema import DashboardIdentity, SignInStatus, login_user, logout_user, unlock_link_valid, unlock_with_link
from texts import N_
from web.forms import local_path
from web.security import request_origin

if TYPE_CHECKING:
    from web.dashboard import Dashboard

__all__ = ["SIGN_IN_FAILED", "SessionViews"]

# One answer for an unknown address, a wrong password and a locked account (English source, translated).
SIGN_IN_FAILED = N_(
    "The email address or the password is wrong. After repeated failed attempts the access is locked; "
    "we then send the link to unlock it to the access's email address."
)


class SessionViews:
    """/login, /logout and /unlock."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def login_form(self, request: Request) -> Response:
        """GET /login."""
        if await self.dashboard.identity(request) is not None:
            return RedirectResponse("/mail-accounts", status_code=303)
        return self.dashboard.render(
            request, "login.html", {"email": "", "error": None, "next": request.query_params.get("next", "")}
        )

    async def login(self, request: Request) -> Response:
        """POST /login: origin and CSRF, the limits per client address and per account, then the password."""
        dashboard, config = self.dashboard, self.dashboard.config
        form = await dashboard.posted_form(request)
        if isinstance(form, Response):
            return form
        email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
        next_path = local_path(str(form.get("next", "")), "/mail-accounts")
        context = {"email": email, "next": next_path}
        result = await login_user(
            email,
            password,
            request.client.host if request.client else "unknown",
            config.sign_in_limits,
            config.unlock_mailer,
            # Host is the client's to choose: a configured PUBLIC_URL keeps mailed links on our own site.
            config.public_url or request_origin(request),
            clock=config.clock,
        )
        t = dashboard.texts(request)
        if result.status is SignInStatus.THROTTLED:
            minutes = max(1, math.ceil(result.retry_after / 60))
            error = t.ngettext(
                "Too many failed sign-in attempts. Please try again in {minutes} minute.",
                "Too many failed sign-in attempts. Please try again in {minutes} minutes.",
                minutes,
            ).format(minutes=minutes)
            response = dashboard.render(request, "login.html", {**context, "error": error}, status_code=429)
            response.headers["Retry-After"] = str(max(1, math.ceil(result.retry_after)))
            return response
        if result.identity is None:
            # A locked account answers exactly like a wrong password, whatever the password: otherwise the
            # lock would tell a guesser when a guess is right. Its holder finds the unlock link in the mail.
            return dashboard.render(
                request, "login.html", {**context, "error": t.gettext(SIGN_IN_FAILED)}, status_code=401
            )
        identity = result.identity
        # A fresh session on sign-in, so a token planted before cannot be carried over.
        dashboard.sign_out(request)
        request.session["uid"] = identity.user_id
        request.session["auth_at"] = config.clock()
        return RedirectResponse(next_path, status_code=303)

    async def logout(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /logout: ends this and every other session of the user (the cookie alone is not enough)."""
        await logout_user(identity.user_id, self.dashboard.config.clock())
        self.dashboard.sign_out(request)
        self.dashboard.flash(request, "logged_out")
        return RedirectResponse("/login", status_code=303)

    async def unlock_form(self, request: Request) -> Response:
        """GET /unlock?token=…: the mailed link; a button confirms (a mail scanner's GET changes nothing)."""
        config = self.dashboard.config
        token = request.query_params.get("token", "")[:1000]
        valid = bool(token) and await unlock_link_valid(token, config.secret_key, clock=config.clock)
        return self.dashboard.render(
            request, "unlock.html", {"token": token, "valid": valid}, status_code=200 if valid else 400
        )

    async def unlock(self, request: Request) -> Response:
        """POST /unlock: lifts the lock the link names, once; then the user signs in as usual."""
        dashboard, config = self.dashboard, self.dashboard.config
        form = await dashboard.posted_form(request)
        if isinstance(form, Response):
            return form
        token = str(form.get("token", ""))[:1000]
        if not token or not await unlock_with_link(token, config.secret_key, config.sign_in_limits, clock=config.clock):
            return dashboard.render(request, "unlock.html", {"token": "", "valid": False}, status_code=400)
        dashboard.flash(request, "unlocked")
        return RedirectResponse("/login", status_code=303)

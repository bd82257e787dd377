"""The dashboard (Einstellungen > Nachrichten > Mail-Accounts): the shared page machinery and the URL table.

The views live in web/views/, one module per noun; they run the operations of web/operations/ through
`Dashboard.client` and render through `Dashboard.render`.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import jinja2
import strawberry
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from schema import DashboardIdentity, Outbox, SignInLimits, SpfChecker, UnlockMailer, principal_for_user
from web.client import OperationFailed, Operations, SchemaClient
from web.formatting import format_age, format_datetime, format_size, spf_problem_label, to_slug
from web.security import (
    CSRF_FIELD,
    Network,
    SecurityHeadersMiddleware,
    TrustedProxyMiddleware,
    csrf_token,
    csrf_valid,
    is_cross_site,
)
from web.views.accounts import AccountViews
from web.views.messages import MessageViews
from web.views.session import SessionViews
from web.views.smtp import SmtpViews
from web.views.spf import SpfViews

__all__ = ["Dashboard", "DashboardConfig", "create_dashboard"]

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent
SESSION_COOKIE = "mailaccounts_session"

# Flash messages: the session keeps only a code and numbers, the text lives here.
FLASH_TEXTS: dict[str, tuple[str, str]] = {
    "created": ("success", "Der Mail-Account wurde angelegt. Richten Sie jetzt die Weiterleitung ein (siehe unten)."),
    "activated": ("success", "Der Mail-Account wurde aktiviert."),
    "deactivated": ("success", "Der Mail-Account wurde deaktiviert. Er empfängt und sendet nichts mehr."),
    "deleted": ("success", "Der Mail-Account wurde gelöscht, mit {count} Nachricht(en)."),
    "merged": ("success", "Die Mail-Accounts wurden zusammengeführt: {count} Nachricht(en) verschoben."),
    "logged_out": ("info", "Sie wurden abgemeldet."),
    "expired": ("info", "Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an."),
    "unlocked": ("success", "Die Sperre Ihres Zugangs ist aufgehoben. Sie können sich wieder anmelden."),
    "smtp_saved": ("success", "Der eigene SMTP-Server wurde gespeichert."),
    "smtp_cleared": ("success", "Der eigene SMTP-Server wurde entfernt; es wird wieder über die Plattform gesendet."),
    "not_found": ("error", "Der Mail-Account wurde nicht gefunden. Vielleicht wurde er inzwischen gelöscht."),
    "spf_checked": ("success", "Die SPF-Prüfung ist abgeschlossen."),
    "spf_checked_all": ("success", "Die SPF-Prüfung von {count} Mail-Account(s) ist abgeschlossen."),
}


@dataclass(frozen=True)
class DashboardConfig:
    """What the dashboard needs: the signing key, the mailbox domain, the outbox, session and sign-in rules.

    `unlock_mailer` mails the link that lifts a lock (None: no mail, only `mailaccounts user unlock`);
    `forwarded_allow_ips` are the proxies whose X-Forwarded-For/-Proto count (FORWARDED_ALLOW_IPS);
    `public_url` is the base of links in mails (PUBLIC_URL; None: the request's own origin).
    """

    secret_key: str
    mailbox_domain: str
    # SPF_INCLUDE: the include the fix instructions name, the same one the check looks for.
    spf_include: str
    outbox: Outbox | None = None
    session_max_age: int = 8 * 3600
    cookie_secure: bool = False
    clock: Callable[[], float] = time.time
    sign_in_limits: SignInLimits = field(default_factory=SignInLimits)
    unlock_mailer: UnlockMailer | None = None
    forwarded_allow_ips: tuple[Network, ...] = ()
    public_url: str | None = None
    spf_checker: SpfChecker | None = None


View = Callable[[Request, DashboardIdentity], Awaitable[Response]]
Action = Callable[[Request, DashboardIdentity, FormData], Awaitable[Response]]


class Dashboard:
    """What every view shares: `client` runs operations as the signed-in user; rendering, flashes, the wrappers."""

    def __init__(self, config: DashboardConfig, client: SchemaClient) -> None:
        self.config = config
        self.client = client
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(WEB_DIR / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
        )
        environment.filters.update(
            slug=to_slug,
            datetime=format_datetime,
            size=format_size,
            age=lambda v: format_age(v, config.clock()),
            spf_problem=spf_problem_label,
        )
        self.templates = Jinja2Templates(env=environment)

    def render(self, request: Request, name: str, context: Mapping[str, object], status_code: int = 200) -> Response:
        """Render a page with the flash messages, the CSRF token and the signed-in user."""
        flashes = [
            (FLASH_TEXTS[code][0], FLASH_TEXTS[code][1].format(**params))
            for code, params in request.session.pop("flash", [])
            if code in FLASH_TEXTS
        ]
        base = {
            "flashes": flashes,
            "csrf_field": CSRF_FIELD,
            "csrf": csrf_token(request),
            "identity": None,
            "spf_include": self.config.spf_include,
        }
        return self.templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)

    @staticmethod
    def flash(request: Request, code: str, **params: int) -> None:
        """Queue a message for the next page: a code and numbers only, so the cookie holds no text."""
        request.session.setdefault("flash", []).append([code, params])

    async def identity(self, request: Request) -> DashboardIdentity | None:
        """The signed-in user, or None; an expired sign-in is cleared and announced."""
        user_id, signed_in_at = request.session.get("uid"), request.session.get("auth_at")
        if not isinstance(user_id, int) or not isinstance(signed_in_at, int | float):
            return None
        if self.config.clock() - signed_in_at > self.config.session_max_age:
            self.sign_out(request)
            self.flash(request, "expired")
            return None
        identity = await principal_for_user(user_id, signed_in_at)
        if identity is None:
            self.sign_out(request)
        return identity

    @staticmethod
    def sign_out(request: Request) -> None:
        """Forget the signed-in user; a new CSRF token, so a planted one does not survive."""
        request.session.clear()
        request.session["csrf"] = secrets.token_urlsafe(32)

    def _to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    def page(self, view: View) -> Callable[[Request], Awaitable[Response]]:
        """A GET page for signed-in users; others are sent to the login."""

        async def endpoint(request: Request) -> Response:
            identity = await self.identity(request)
            if identity is None:
                return self._to_login(request)
            return await view(request, identity)

        return endpoint

    def cross_site_refused(self, request: Request) -> Response:
        """The 403 page for a state-changing request another site sent."""
        origin = request.headers.get("origin")
        log.warning("cross-site %s %s refused (Origin %r)", request.method, request.url.path, origin)
        return self.render(request, "cross_site.html", {}, status_code=403)

    async def posted_form(self, request: Request) -> FormData | Response:
        """The form of a POST from our own site carrying the session's CSRF token, or the 403 page."""
        if is_cross_site(request, self.config.public_url):
            return self.cross_site_refused(request)
        form = await request.form()
        submitted = form.get(CSRF_FIELD)
        if not csrf_valid(request, submitted if isinstance(submitted, str) else None):
            return self.render(request, "csrf.html", {}, status_code=403)
        return form

    def action(self, view: Action) -> Callable[[Request], Awaitable[Response]]:
        """A POST action: refused from another site or without the session's CSRF token, then only signed in."""

        async def endpoint(request: Request) -> Response:
            form = await self.posted_form(request)
            if isinstance(form, Response):
                return form
            identity = await self.identity(request)
            if identity is None:
                return RedirectResponse("/login", status_code=303)
            return await view(request, identity, form)

        return endpoint

    def not_found(self, request: Request, identity: DashboardIdentity | None) -> Response:
        """The 404 page."""
        return self.render(request, "not_found.html", {"identity": identity}, status_code=404)


def dashboard_routes(dashboard: Dashboard) -> list[Route | Mount]:
    """Every page and action of the dashboard; each POST goes through `action` (CSRF, sign-in).

    One table, in order: the fixed paths under /mail-accounts/ come before /mail-accounts/{slug}.
    """
    session, accounts, spf = SessionViews(dashboard), AccountViews(dashboard), SpfViews(dashboard)
    messages, smtp = MessageViews(dashboard), SmtpViews(dashboard)
    page, action = dashboard.page, dashboard.action
    return [
        Route("/", accounts.home, methods=["GET"]),
        Route("/login", session.login_form, methods=["GET"]),
        Route("/login", session.login, methods=["POST"]),
        Route("/logout", action(session.logout), methods=["POST"]),
        Route("/unlock", session.unlock_form, methods=["GET"]),
        Route("/unlock", session.unlock, methods=["POST"]),
        Route("/mail-accounts", page(accounts.accounts), methods=["GET"]),
        Route("/mail-accounts/new", page(accounts.new_form), methods=["GET"]),
        Route("/mail-accounts/new", action(accounts.create), methods=["POST"]),
        Route("/mail-accounts/spf-check", action(spf.spf_check_all), methods=["POST"]),
        Route("/mail-accounts/spf-status", page(spf.spf_status), methods=["GET"]),
        Route("/mail-accounts/{slug}", page(accounts.detail), methods=["GET"]),
        Route("/mail-accounts/{slug}/spf-check", action(spf.spf_check), methods=["POST"]),
        Route("/mail-accounts/{slug}/status", action(accounts.set_status), methods=["POST"]),
        Route("/mail-accounts/{slug}/delete", page(accounts.delete_form), methods=["GET"]),
        Route("/mail-accounts/{slug}/delete", action(accounts.delete), methods=["POST"]),
        Route("/mail-accounts/{slug}/merge", page(accounts.merge_form), methods=["GET"]),
        Route("/mail-accounts/{slug}/merge", action(accounts.merge), methods=["POST"]),
        Route("/mail-accounts/{slug}/messages", page(messages.messages), methods=["GET"]),
        Route("/mail-accounts/{slug}/messages/{message}", page(messages.message), methods=["GET"]),
        Route("/mail-accounts/{slug}/smtp", page(smtp.smtp_form), methods=["GET"]),
        Route("/mail-accounts/{slug}/smtp", action(smtp.smtp_save), methods=["POST"]),
        Route("/mail-accounts/{slug}/smtp/clear", action(smtp.smtp_clear), methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=WEB_DIR / "static"), name="static"),
    ]


def create_dashboard(
    config: DashboardConfig, operations: Operations | None = None, graphql_schema: strawberry.Schema | None = None
) -> Starlette:
    """The dashboard as an ASGI app with its session and security middleware; mount it at `/`.

    `graphql_schema` is the API's schema (same production flags and limits); by default the development one.
    """
    client = SchemaClient(
        operations or Operations.load(), config.mailbox_domain, config.outbox, config.spf_checker, graphql_schema
    )
    dashboard = Dashboard(config, client)

    async def operation_failed(request: Request, exc: Exception) -> Response:
        return dashboard.render(request, "error.html", {"identity": None}, status_code=500)

    async def not_found(request: Request, exc: Exception) -> Response:
        return dashboard.render(request, "not_found.html", {"identity": None}, status_code=404)

    return Starlette(
        routes=dashboard_routes(dashboard),
        middleware=[
            # First, so the origin check and the sign-in limits see the client behind a trusted proxy.
            Middleware(TrustedProxyMiddleware, trusted=config.forwarded_allow_ips),
            Middleware(SecurityHeadersMiddleware),
            Middleware(
                SessionMiddleware,
                secret_key=config.secret_key,
                session_cookie=SESSION_COOKIE,
                max_age=config.session_max_age,
                same_site="lax",
                https_only=config.cookie_secure,
            ),
        ],
        exception_handlers={OperationFailed: operation_failed, 404: not_found},
    )

"""The dashboard (Einstellungen > Nachrichten > Mail-Accounts): the shared page machinery and the URL table.

The views live in web/views/, one module per noun; they run the operations of web/operations/ through
`Dashboard.client` and render through `Dashboard.render`.
"""

from __future__ import annotations

import gettext
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

from schema import (
    BackgroundOperations,
    DashboardIdentity,
    Outbox,
    SignInLimits,
    SpfChecker,
    UnlockMailer,
    principal_for_user,
)
from texts import DEFAULT_LANGUAGE, LANGUAGES, N_, translations
from web.client import OperationFailed, Operations, SchemaClient
from web.formatting import format_age, format_count, format_datetime, format_size, spf_problem_label, to_slug
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

__all__ = ["Dashboard", "DashboardConfig", "create_dashboard", "flash_text", "template_environment"]

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent
SESSION_COOKIE = "mailaccounts_session"

# Flash messages: the session keeps only a code and numbers, the text lives here (English source,
# translated when shown; `{name}` placeholders are filled from the numbers).
FLASH_TEXTS: dict[str, tuple[str, str]] = {
    "created": ("success", N_("The mail account was created. Now set up the forwarding (see below).")),
    "activated": ("success", N_("The mail account was activated.")),
    "deactivated": ("success", N_("The mail account was deactivated. It no longer receives or sends anything.")),
    "updated": ("success", N_("The changes were saved.")),
    "updated_spf_cleared": (
        "success",
        N_(
            "The changes were saved. The SPF result of the old address no longer applies: "
            "start the SPF check for the new address."
        ),
    ),
    "logged_out": ("info", N_("You were signed out.")),
    "expired": ("info", N_("Your session has expired. Please sign in again.")),
    "unlocked": ("success", N_("The lock on your access was lifted. You can sign in again.")),
    "smtp_saved": ("success", N_("The own SMTP server was saved.")),
    "smtp_cleared": ("success", N_("The own SMTP server was removed; mail is sent through the platform again.")),
    "not_found": ("error", N_("The mail account was not found. Perhaps it was deleted in the meantime.")),
    "spf_checked": ("success", N_("The SPF check is complete.")),
    "merge_finished": ("success", N_("The merge is complete: every message was moved, the mail account is deleted.")),
    "delete_finished": ("success", N_("The deletion is complete: the mail account and its messages are deleted.")),
    "operation_pending": (
        "error",
        N_("A merge or deletion of this mail account is still running. Please wait until it has finished."),
    ),
}
# Flashes with a `count`: the text for it (plural forms; none is said in words, not as "0 messages").
COUNTED_FLASH_TEXTS: dict[str, tuple[str, Callable[[gettext.NullTranslations, int], str]]] = {
    "deleted": (
        "success",
        lambda t, n: (
            t.ngettext(
                "The mail account was deleted, with its only message.",
                "The mail account was deleted, with all {count} messages.",
                n,
            )
            if n
            else t.gettext("The mail account was deleted; it had no messages.")
        ),
    ),
    "merged": (
        "success",
        lambda t, n: (
            t.ngettext(
                "The mail accounts were merged: {count} message moved.",
                "The mail accounts were merged: {count} messages moved.",
                n,
            )
            if n
            else t.gettext("The mail accounts were merged; there were no messages to move.")
        ),
    ),
    # A large merge or delete runs in the background (BACKGROUND_OPERATION_MESSAGES); `count` is never 0 here.
    "merge_started": (
        "success",
        lambda t, n: t.ngettext(
            "The merge has started: {count} message is moved in the background. Mail to this account already "
            "goes to the target.",
            "The merge has started: {count} messages are moved in the background. Mail to this account already "
            "goes to the target.",
            n,
        ),
    ),
    "delete_started": (
        "success",
        lambda t, n: t.ngettext(
            "The deletion has started: {count} message is deleted in the background. The mail account no longer "
            "receives mail.",
            "The deletion has started: {count} messages are deleted in the background. The mail account no longer "
            "receives mail.",
            n,
        ),
    ),
}


def flash_text(t: gettext.NullTranslations, code: str, params: Mapping[str, int]) -> tuple[str, str] | None:
    """The kind and text of a queued flash in the language of `t`; None for a code no longer known."""
    if code in COUNTED_FLASH_TEXTS:
        kind, text_for = COUNTED_FLASH_TEXTS[code]
        return kind, text_for(t, int(params.get("count", 0))).format(**params)
    if code in FLASH_TEXTS:
        kind, source = FLASH_TEXTS[code]
        return kind, t.gettext(source).format(**params)
    return None


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
    background_operations: BackgroundOperations | None = None


def template_environment(lang: str, clock: Callable[[], float]) -> jinja2.Environment:
    """The templates with the catalogue of `lang` installed for `_()`/`ngettext()`, one environment per language.

    Newstyle gettext: Jinja fills the placeholders and escapes their values; macros imported without
    context see the catalogue too, as it is a global of the environment.
    """
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    environment.filters.update(
        slug=to_slug,
        datetime=lambda value: format_datetime(value, lang),
        size=lambda value: format_size(value, lang),
        count=lambda value: format_count(value, lang),
        age=lambda value: format_age(value, lang, clock()),
        spf_problem=lambda code: spf_problem_label(code, lang),
    )
    return environment


View = Callable[[Request, DashboardIdentity], Awaitable[Response]]
Action = Callable[[Request, DashboardIdentity, FormData], Awaitable[Response]]


class Dashboard:
    """What every view shares: `client` runs operations as the signed-in user; rendering, flashes, the wrappers."""

    def __init__(self, config: DashboardConfig, client: SchemaClient) -> None:
        self.config = config
        self.client = client
        self.templates = {lang: Jinja2Templates(env=template_environment(lang, config.clock)) for lang in LANGUAGES}

    @staticmethod
    def language(request: Request) -> str:
        """The dashboard's language: German, the product's.

        Every page text is in the catalogue (English renders in tests), but the operations still ask the
        API for German texts (web/client.py); a page half in English helps no one.
        """
        return DEFAULT_LANGUAGE

    def texts(self, request: Request) -> gettext.NullTranslations:
        """The catalogue of the request's language, for texts a view builds (form errors, labels)."""
        return translations(self.language(request))

    def render(self, request: Request, name: str, context: Mapping[str, object], status_code: int = 200) -> Response:
        """Render a page with the flash messages, the CSRF token and the signed-in user."""
        lang = self.language(request)
        t = translations(lang)
        queued = request.session.pop("flash", [])
        flashes = [text for code, params in queued if (text := flash_text(t, code, params)) is not None]
        base = {
            "lang": lang,
            "flashes": flashes,
            "csrf_field": CSRF_FIELD,
            "csrf": csrf_token(request),
            "identity": None,
            "spf_include": self.config.spf_include,
        }
        return self.templates[lang].TemplateResponse(request, name, {**base, **context}, status_code=status_code)

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
        Route("/mail-accounts/{slug}/edit", action(accounts.update), methods=["POST"]),
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
        operations or Operations.load(),
        config.mailbox_domain,
        config.outbox,
        config.spf_checker,
        graphql_schema,
        background_operations=config.background_operations,
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

"""The dashboard (Einstellungen > Nachrichten > Mail-Accounts): server-rendered pages over the GraphQL operations."""

from __future__ import annotations

import base64
import binascii
import email.message
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
import strawberry
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from schema import (
    DashboardIdentity,
    Outbox,
    SignInLimits,
    SignInStatus,
    SpfChecker,
    UnlockMailer,
    login_user,
    logout_user,
    principal_for_user,
    unlock_link_valid,
    unlock_with_link,
)
from web.client import OperationFailed, Operations, SchemaClient
from web.security import (
    CSRF_FIELD,
    Network,
    SecurityHeadersMiddleware,
    TrustedProxyMiddleware,
    csrf_token,
    csrf_valid,
    is_cross_site,
    request_origin,
)

__all__ = ["DashboardConfig", "create_dashboard", "from_slug", "to_slug"]

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent
PAGE_SIZE = 20
MESSAGE_PAGE_SIZE = 25
MERGE_TARGETS_MAX = 100
SESSION_COOKIE = "mailaccounts_session"
LOCAL_TIME = ZoneInfo("Europe/Berlin")
_SLUG = re.compile(r"^[A-Za-z0-9_-]{1,200}$")

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
STATUS_FILTERS = {"": "Alle", "ACTIVE": "Aktiv", "INACTIVE": "Inaktiv"}
SMTP_SECURITIES = {"STARTTLS": "STARTTLS (Port 587)", "TLS": "SSL/TLS (Port 465)", "NONE": "Keine (nicht empfohlen)"}


def to_slug(global_id: str) -> str:
    """A global ID as a URL path segment: URL-safe base64 without padding."""
    return global_id.replace("+", "-").replace("/", "_").rstrip("=")


def from_slug(slug: str) -> str | None:
    """The global ID behind a slug from `to_slug`, or None when the slug is malformed."""
    if not _SLUG.match(slug):
        return None
    text = slug.replace("-", "+").replace("_", "/")
    return text + "=" * (-len(text) % 4)


def _local_path(value: str | None, default: str) -> str:
    """`value` if it is a path of this dashboard (never another host), else `default`."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value
    return default


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_datetime(value: str | None) -> str:
    """An ISO timestamp from the API as German local time, e.g. 03.02.2025, 14:05."""
    moment = _when(value)
    return moment.astimezone(LOCAL_TIME).strftime("%d.%m.%Y, %H:%M") if moment else "\N{EN DASH}"


def format_age(value: str | None, now: float | None = None) -> str:
    """How long ago an ISO timestamp was, in German: "vor 5 Minuten"."""
    moment = _when(value)
    if moment is None:
        return ""
    seconds = max(0, int((now if now is not None else time.time()) - moment.timestamp()))
    for size, one, many in ((86400, "Tag", "Tagen"), (3600, "Stunde", "Stunden"), (60, "Minute", "Minuten")):
        if seconds >= size:
            count = seconds // size
            return f"vor {count} {one if count == 1 else many}"
    return "gerade eben"


def format_size(value: int) -> str:
    """Bytes as B, KB or MB with a German decimal comma."""
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KB".replace(".", ",")
    return f"{value / 1024 / 1024:.1f} MB".replace(".", ",")


def _field_errors(user_errors: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """userErrors split into messages per input field (last part of `field`) and messages without one."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for error in user_errors:
        path = error.get("field") or []
        if path:
            by_field.setdefault(str(path[-1]), error["message"])
        else:
            general.append(error["message"])
    return by_field, general


@dataclass(frozen=True)
class ReadableMessage:
    """A stored mail prepared for reading: selected headers and the text, never rendered as HTML."""

    headers: list[tuple[str, str]]
    text: str
    html_only: bool
    attachments: list[str] = field(default_factory=list)


def readable_message(raw: bytes, max_chars: int = 200_000) -> ReadableMessage:
    """Headers and plain text of a raw message; an HTML-only message shows its source as text."""
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    headers = []
    for name in ("From", "To", "Cc", "Reply-To", "Date", "Subject", "Message-ID"):
        try:
            value = parsed.get(name)
        except Exception:
            value = None
        if value is not None:
            headers.append((name, str(value)))
    text, html_only = "", False
    try:
        body = (
            parsed.get_body(preferencelist=("plain", "html"))
            if isinstance(parsed, email.message.EmailMessage)
            else None
        )
        if body is not None:
            text = str(body.get_content())
            html_only = body.get_content_type() == "text/html"
        elif not parsed.is_multipart():
            text = str(parsed.get_payload())
    except (LookupError, ValueError, AssertionError):
        text = raw.decode("utf-8", "replace").split("\n\n", 1)[-1]
    attachments = []
    if isinstance(parsed, email.message.EmailMessage):
        attachments = [part.get_filename() or part.get_content_type() for part in parsed.iter_attachments()]
    return ReadableMessage(headers=headers, text=text[:max_chars], html_only=html_only, attachments=attachments)


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

# One answer for an unknown address, a wrong password and a locked account.
SIGN_IN_FAILED = (
    "E-Mail-Adresse oder Passwort ist falsch. Nach wiederholten Fehlversuchen wird der Zugang gesperrt; "
    "den Link zum Entsperren senden wir dann an die E-Mail-Adresse des Zugangs."
)
Action = Callable[[Request, DashboardIdentity, FormData], Awaitable[Response]]


class Dashboard:
    """The pages; each view runs operations through `client` as the signed-in user."""

    def __init__(self, config: DashboardConfig, client: SchemaClient) -> None:
        self.config = config
        self.client = client
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(WEB_DIR / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
        )
        environment.filters.update(
            slug=to_slug, datetime=format_datetime, size=format_size, age=lambda v: format_age(v, config.clock())
        )
        self.templates = Jinja2Templates(env=environment)

    # --- plumbing ---------------------------------------------------------------------------------

    def render(self, request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
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
            self._sign_out(request)
            self.flash(request, "expired")
            return None
        identity = await principal_for_user(user_id, signed_in_at)
        if identity is None:
            self._sign_out(request)
        return identity

    @staticmethod
    def _sign_out(request: Request) -> None:
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

    async def account(self, identity: DashboardIdentity, slug: str) -> dict[str, Any] | None:
        """The tenant's account behind a URL slug, or None."""
        global_id = from_slug(slug)
        if global_id is None:
            return None
        data = await self.client.run(identity, "Account", {"id": global_id})
        account: dict[str, Any] | None = data["account"]
        return account

    # --- sign-in --------------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        """GET /login."""
        if await self.identity(request) is not None:
            return RedirectResponse("/mail-accounts", status_code=303)
        return self.render(
            request, "login.html", {"email": "", "error": None, "next": request.query_params.get("next", "")}
        )

    async def login(self, request: Request) -> Response:
        """POST /login: origin and CSRF, the limits per client address and per account, then the password."""
        form = await self.posted_form(request)
        if isinstance(form, Response):
            return form
        email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
        next_path = _local_path(str(form.get("next", "")), "/mail-accounts")
        context = {"email": email, "next": next_path}
        result = await login_user(
            email,
            password,
            request.client.host if request.client else "unknown",
            self.config.sign_in_limits,
            self.config.unlock_mailer,
            # Host is the client's to choose: a configured PUBLIC_URL keeps mailed links on our own site.
            self.config.public_url or request_origin(request),
            clock=self.config.clock,
        )
        if result.status is SignInStatus.THROTTLED:
            minutes = max(1, math.ceil(result.retry_after / 60))
            error = (
                "Zu viele fehlgeschlagene Anmeldeversuche. "
                f"Bitte versuchen Sie es in {minutes} Minute{'n' if minutes != 1 else ''} erneut."
            )
            response = self.render(request, "login.html", {**context, "error": error}, status_code=429)
            response.headers["Retry-After"] = str(max(1, math.ceil(result.retry_after)))
            return response
        if result.identity is None:
            # A locked account answers exactly like a wrong password, whatever the password: otherwise the
            # lock would tell a guesser when a guess is right. Its holder finds the unlock link in the mail.
            return self.render(request, "login.html", {**context, "error": SIGN_IN_FAILED}, status_code=401)
        identity = result.identity
        # A fresh session on sign-in, so a token planted before cannot be carried over.
        self._sign_out(request)
        request.session["uid"] = identity.user_id
        request.session["auth_at"] = self.config.clock()
        return RedirectResponse(next_path, status_code=303)

    async def logout(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /logout: ends this and every other session of the user (the cookie alone is not enough)."""
        await logout_user(identity.user_id, self.config.clock())
        self._sign_out(request)
        self.flash(request, "logged_out")
        return RedirectResponse("/login", status_code=303)

    async def unlock_form(self, request: Request) -> Response:
        """GET /unlock?token=…: the mailed link; a button confirms (a mail scanner's GET changes nothing)."""
        token = request.query_params.get("token", "")[:1000]
        valid = bool(token) and await unlock_link_valid(token, self.config.secret_key, clock=self.config.clock)
        return self.render(request, "unlock.html", {"token": token, "valid": valid}, status_code=200 if valid else 400)

    async def unlock(self, request: Request) -> Response:
        """POST /unlock: lifts the lock the link names, once; then the user signs in as usual."""
        form = await self.posted_form(request)
        if isinstance(form, Response):
            return form
        token = str(form.get("token", ""))[:1000]
        limits = self.config.sign_in_limits
        if not token or not await unlock_with_link(token, self.config.secret_key, limits, clock=self.config.clock):
            return self.render(request, "unlock.html", {"token": "", "valid": False}, status_code=400)
        self.flash(request, "unlocked")
        return RedirectResponse("/login", status_code=303)

    async def home(self, request: Request) -> Response:
        """GET /: the account list."""
        return RedirectResponse("/mail-accounts", status_code=303)

    # --- accounts -------------------------------------------------------------------------------

    async def accounts(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts: search, status filter and pages of PAGE_SIZE."""
        params = request.query_params
        search = params.get("q", "").strip()[:200]
        status = params.get("status", "")
        status = status if status in STATUS_FILTERS else ""
        after = params.get("after") or None
        # The cursors of the pages before this one ("" is the first page): the API only pages forwards.
        history = params.getlist("prev")[:1000] if after else []
        variables = {"first": PAGE_SIZE, "after": after, "status": status or None, "search": search or None}
        data = (await self.client.run(identity, "Accounts", variables))["accounts"]
        filters = {"q": search, "status": status}
        base_query = {key: value for key, value in filters.items() if value}

        def page_link(cursor: str | None, previous: list[str]) -> str:
            query: list[tuple[str, str]] = list(base_query.items())
            if cursor:
                query += [("after", cursor), *(("prev", p) for p in previous)]
            return "/mail-accounts" + (f"?{urlencode(query)}" if query else "")

        next_link = (
            page_link(data["pageInfo"]["endCursor"], [*history, after or ""])
            if data["pageInfo"]["hasNextPage"]
            else None
        )
        previous_link = page_link(history[-1] or None, history[:-1]) if history else None
        return self.render(
            request,
            "accounts.html",
            {
                "identity": identity,
                "accounts": [edge["node"] for edge in data["edges"]],
                "total": data["totalCount"],
                "search": search,
                "status": status,
                "status_filters": STATUS_FILTERS,
                "filtered": bool(base_query),
                "page": len(history) + 1,
                "pages": max(1, math.ceil(data["totalCount"] / PAGE_SIZE)),
                "next_link": next_link,
                "previous_link": previous_link,
                "here": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            },
        )

    async def new_form(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/new."""
        values = {"email": "", "senderName": "", "active": True}
        return self.render(
            request, "account_new.html", {"identity": identity, "values": values, "errors": {}, "general": []}
        )

    async def create(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/new: errors are shown at their field; success leads to the account page."""
        values = {
            "email": str(form.get("email", "")),
            "senderName": str(form.get("senderName", "")),
            "active": form.get("active") == "on",
        }
        data = (await self.client.run(identity, "CreateAccount", {"input": values}))["createAccount"]
        if data["userErrors"]:
            errors, general = _field_errors(data["userErrors"])
            return self.render(
                request,
                "account_new.html",
                {"identity": identity, "values": values, "errors": errors, "general": general},
                status_code=422,
            )
        self.flash(request, "created")
        return RedirectResponse(f"/mail-accounts/{to_slug(data['account']['id'])}", status_code=303)

    async def detail(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}: addresses, forwarding instruction, actions, domain configuration."""
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            return self.not_found(request, identity)
        return self.render(request, "account.html", {"identity": identity, "account": account})

    async def set_status(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/status: the toggle of a row."""
        global_id = from_slug(request.path_params["slug"])
        status = str(form.get("status", ""))
        back = _local_path(str(form.get("next", "")), "/mail-accounts")
        if global_id is None or status not in ("ACTIVE", "INACTIVE"):
            return self.not_found(request, identity)
        data = (await self.client.run(identity, "SetStatus", {"input": {"accountId": global_id, "status": status}}))[
            "setStatus"
        ]
        if data["userErrors"]:
            self.flash(request, "not_found")
        else:
            self.flash(request, "activated" if status == "ACTIVE" else "deactivated")
        return RedirectResponse(back, status_code=303)

    async def delete_form(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}/delete: what is lost, and the field to type the address."""
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            return self.not_found(request, identity)
        return self.render(request, "account_delete.html", {"identity": identity, "account": account, "error": None})

    async def delete(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/delete: only with the typed address."""
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            return self.not_found(request, identity)
        confirm = str(form.get("confirm", ""))
        variables = {"input": {"accountId": account["id"], "confirm": confirm}}
        data = (await self.client.run(identity, "DeleteAccount", variables))["deleteAccount"]
        if data["userErrors"]:
            errors, general = _field_errors(data["userErrors"])
            error = errors.get("confirm") or " ".join(general) or next(iter(errors.values()), "")
            return self.render(
                request,
                "account_delete.html",
                {"identity": identity, "account": account, "error": error},
                status_code=422,
            )
        self.flash(request, "deleted", count=data["deletedMessageCount"])
        return RedirectResponse("/mail-accounts", status_code=303)

    async def _merge_page(
        self,
        request: Request,
        identity: DashboardIdentity,
        account: dict[str, Any],
        values: dict[str, str],
        errors: dict[str, str],
        status_code: int = 200,
    ) -> Response:
        data = (await self.client.run(identity, "MergeTargets", {"first": MERGE_TARGETS_MAX}))["accounts"]
        targets = [edge["node"] for edge in data["edges"] if edge["node"]["id"] != account["id"]]
        return self.render(
            request,
            "account_merge.html",
            {
                "identity": identity,
                "account": account,
                "targets": targets,
                "more_targets": data["totalCount"] > MERGE_TARGETS_MAX,
                "values": values,
                "errors": errors,
            },
            status_code=status_code,
        )

    async def merge_form(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}/merge: choose the target, see what moves, confirm."""
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            return self.not_found(request, identity)
        values = {"targetId": request.query_params.get("targetId", ""), "confirm": ""}
        return await self._merge_page(request, identity, account, values, {})

    async def merge(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/merge: moves the messages into the target and deletes this account."""
        account = await self.account(identity, request.path_params["slug"])
        if account is None:
            return self.not_found(request, identity)
        values = {"targetId": str(form.get("targetId", "")), "confirm": str(form.get("confirm", ""))}
        if not values["targetId"]:
            errors = {"targetId": "Bitte wählen Sie den Mail-Account, in den die Nachrichten verschoben werden."}
            return await self._merge_page(request, identity, account, values, errors, status_code=422)
        variables = {"input": {"sourceId": account["id"], "targetId": values["targetId"], "confirm": values["confirm"]}}
        data = (await self.client.run(identity, "MergeAccounts", variables))["mergeAccounts"]
        if data["userErrors"]:
            errors, general = _field_errors(data["userErrors"])
            if general:
                errors.setdefault("confirm", " ".join(general))
            return await self._merge_page(request, identity, account, values, errors, status_code=422)
        self.flash(request, "merged", count=data["movedMessageCount"])
        return RedirectResponse(f"/mail-accounts/{to_slug(data['account']['id'])}", status_code=303)

    # --- SPF ----------------------------------------------------------------------------------------

    async def spf_check(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/spf-check: check one account and show its domain panel."""
        global_id = from_slug(request.path_params["slug"])
        if global_id is None:
            return self.not_found(request, identity)
        data = (await self.client.run(identity, "SpfCheck", {"accountId": global_id}))["spfCheck"]
        self.flash(request, "not_found" if data["userErrors"] or data["report"] is None else "spf_checked")
        return RedirectResponse(f"/mail-accounts/{request.path_params['slug']}#domainkonfiguration", status_code=303)

    async def spf_check_all(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/spf-check: every account of the tenant through spfCheckAll.

        The progress script asks for JSON: the check then runs in the background and the script follows
        it with /mail-accounts/spf-status. Without the script the request waits for the whole check.
        """
        wants_json = "application/json" in request.headers.get("accept", "")
        summary = (await self.client.run(identity, "SpfCheckAll", {"wait": not wants_json}))["spfCheckAll"]["summary"]
        if wants_json:
            return JSONResponse({"startedAt": summary["startedAt"], "total": summary["total"]})
        self.flash(request, "spf_checked_all", count=summary["checked"])
        return RedirectResponse("/mail-accounts", status_code=303)

    async def spf_status(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/spf-status?startedAt=…: progress of a bulk check, for the progress script."""
        started_at = request.query_params.get("startedAt", "")
        if _when(started_at) is None:
            return JSONResponse({"error": "startedAt fehlt"}, status_code=400)
        status = (await self.client.run(identity, "SpfCheckStatus", {"startedAt": started_at}))["spfCheckStatus"]
        return JSONResponse(status)

    # --- messages and own SMTP server ---------------------------------------------------------

    async def messages(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}/messages: newest first, filtered by direction."""
        global_id = from_slug(request.path_params["slug"])
        if global_id is None:
            return self.not_found(request, identity)
        direction = request.query_params.get("direction", "")
        direction = direction if direction in ("INBOUND", "OUTBOUND") else ""
        after = request.query_params.get("after") or None
        variables = {"id": global_id, "first": MESSAGE_PAGE_SIZE, "after": after, "direction": direction or None}
        account = (await self.client.run(identity, "AccountMessages", variables))["account"]
        if account is None:
            return self.not_found(request, identity)
        connection = account["messages"]
        next_query = {"after": connection["pageInfo"]["endCursor"], **({"direction": direction} if direction else {})}
        return self.render(
            request,
            "messages.html",
            {
                "identity": identity,
                "account": account,
                "messages": [edge["node"] for edge in connection["edges"]],
                "total": connection["totalCount"],
                "direction": direction,
                "next_link": f"?{urlencode(next_query)}" if connection["pageInfo"]["hasNextPage"] else None,
                "first_link": f"?{urlencode({'direction': direction})}"
                if after and direction
                else ("?" if after else None),
            },
        )

    async def message(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}/messages/{message}: headers and text, always as text."""
        account_id, message_id = from_slug(request.path_params["slug"]), from_slug(request.path_params["message"])
        if account_id is None or message_id is None:
            return self.not_found(request, identity)
        data = await self.client.run(identity, "MessageView", {"accountId": account_id, "id": message_id})
        if data["account"] is None or data["message"] is None:
            return self.not_found(request, identity)
        try:
            raw = base64.b64decode(data["message"]["rawBase64"], validate=True)
        except binascii.Error:
            raw = b""
        readable = readable_message(raw)
        return self.render(
            request,
            "message.html",
            {"identity": identity, "account": data["account"], "message": data["message"], "readable": readable},
        )

    async def _smtp_page(
        self,
        request: Request,
        identity: DashboardIdentity,
        account: dict[str, Any],
        values: dict[str, Any],
        errors: dict[str, str],
        general: list[str],
        status_code: int = 200,
    ) -> Response:
        return self.render(
            request,
            "smtp.html",
            {
                "identity": identity,
                "account": account,
                "values": values,
                "errors": errors,
                "general": general,
                "securities": SMTP_SECURITIES,
            },
            status_code=status_code,
        )

    async def _smtp_account(self, identity: DashboardIdentity, slug: str) -> dict[str, Any] | None:
        global_id = from_slug(slug)
        if global_id is None:
            return None
        account: dict[str, Any] | None = (await self.client.run(identity, "AccountSmtpServer", {"id": global_id}))[
            "account"
        ]
        return account

    async def smtp_form(self, request: Request, identity: DashboardIdentity) -> Response:
        """GET /mail-accounts/{slug}/smtp: the own SMTP server, or the platform relay."""
        account = await self._smtp_account(identity, request.path_params["slug"])
        if account is None:
            return self.not_found(request, identity)
        server = account["smtpServer"] or {"host": "", "port": 587, "security": "STARTTLS", "username": ""}
        values = {**server, "username": server["username"] or ""}
        return await self._smtp_page(request, identity, account, values, {}, [])

    async def smtp_save(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/smtp: an empty password keeps the stored one."""
        account = await self._smtp_account(identity, request.path_params["slug"])
        if account is None:
            return self.not_found(request, identity)
        port_text = str(form.get("port", "")).strip()
        security = str(form.get("security", "STARTTLS"))
        values: dict[str, Any] = {
            "host": str(form.get("host", "")).strip(),
            "port": port_text,
            "security": security if security in SMTP_SECURITIES else "STARTTLS",
            "username": str(form.get("username", "")).strip(),
        }
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            errors = {"port": "Bitte geben Sie einen Port zwischen 1 und 65535 ein."}
            return await self._smtp_page(request, identity, account, values, errors, [], status_code=422)
        password = str(form.get("password", ""))
        variables = {
            "input": {
                "accountId": account["id"],
                "host": values["host"],
                "port": int(port_text),
                "security": values["security"],
                "username": values["username"] or None,
                "password": password or None,
            }
        }
        try:
            data = (await self.client.run(identity, "SetSmtpServer", variables))["setSmtpServer"]
        except OperationFailed:
            general = ["Der eigene SMTP-Server kann auf diesem Server nicht gespeichert werden (SECRET_KEY fehlt)."]
            return await self._smtp_page(request, identity, account, values, {}, general, status_code=503)
        if data["userErrors"]:
            errors, general = _field_errors(data["userErrors"])
            return await self._smtp_page(request, identity, account, values, errors, general, status_code=422)
        self.flash(request, "smtp_saved")
        return RedirectResponse(f"/mail-accounts/{request.path_params['slug']}", status_code=303)

    async def smtp_clear(self, request: Request, identity: DashboardIdentity, form: FormData) -> Response:
        """POST /mail-accounts/{slug}/smtp/clear: back to the platform relay."""
        global_id = from_slug(request.path_params["slug"])
        if global_id is None:
            return self.not_found(request, identity)
        data = (await self.client.run(identity, "ClearSmtpServer", {"input": {"accountId": global_id}}))[
            "clearSmtpServer"
        ]
        self.flash(request, "not_found" if data["userErrors"] else "smtp_cleared")
        return RedirectResponse(f"/mail-accounts/{request.path_params['slug']}", status_code=303)

    # --- assembly ---------------------------------------------------------------------------------

    def routes(self) -> list[Route | Mount]:
        """Every page and action of the dashboard; each POST goes through `action` (CSRF, sign-in)."""
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.action(self.logout), methods=["POST"]),
            Route("/unlock", self.unlock_form, methods=["GET"]),
            Route("/unlock", self.unlock, methods=["POST"]),
            Route("/mail-accounts", self.page(self.accounts), methods=["GET"]),
            Route("/mail-accounts/new", self.page(self.new_form), methods=["GET"]),
            Route("/mail-accounts/new", self.action(self.create), methods=["POST"]),
            Route("/mail-accounts/spf-check", self.action(self.spf_check_all), methods=["POST"]),
            Route("/mail-accounts/spf-status", self.page(self.spf_status), methods=["GET"]),
            Route("/mail-accounts/{slug}", self.page(self.detail), methods=["GET"]),
            Route("/mail-accounts/{slug}/spf-check", self.action(self.spf_check), methods=["POST"]),
            Route("/mail-accounts/{slug}/status", self.action(self.set_status), methods=["POST"]),
            Route("/mail-accounts/{slug}/delete", self.page(self.delete_form), methods=["GET"]),
            Route("/mail-accounts/{slug}/delete", self.action(self.delete), methods=["POST"]),
            Route("/mail-accounts/{slug}/merge", self.page(self.merge_form), methods=["GET"]),
            Route("/mail-accounts/{slug}/merge", self.action(self.merge), methods=["POST"]),
            Route("/mail-accounts/{slug}/messages", self.page(self.messages), methods=["GET"]),
            Route("/mail-accounts/{slug}/messages/{message}", self.page(self.message), methods=["GET"]),
            Route("/mail-accounts/{slug}/smtp", self.page(self.smtp_form), methods=["GET"]),
            Route("/mail-accounts/{slug}/smtp", self.action(self.smtp_save), methods=["POST"]),
            Route("/mail-accounts/{slug}/smtp/clear", self.action(self.smtp_clear), methods=["POST"]),
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
        routes=dashboard.routes(),
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

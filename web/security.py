"""Browser protections of the dashboard: security headers, the CSRF token, the origin check, trusted proxies."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CSRF_FIELD",
    "Network",
    "SecurityHeadersMiddleware",
    "TrustedProxyMiddleware",
    "csrf_token",
    "csrf_valid",
    "is_cross_site",
    "request_origin",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# No inline script or style anywhere: everything comes from /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class SecurityHeadersMiddleware:
    """Adds CSP, frame, sniffing and referrer headers to every response; pages are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                if not is_static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use; forms post it back as a hidden field."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_valid(request: Request, submitted: str | None) -> bool:
    """Whether `submitted` (form field or X-CSRF-Token header) equals the session's token."""
    expected = request.session.get("csrf")
    candidate = submitted or request.headers.get(CSRF_HEADER) or ""
    return isinstance(expected, str) and bool(expected) and hmac.compare_digest(expected, candidate)


# Sec-Fetch-Site values of a request the dashboard itself caused ("none": typed or bookmarked by the user).
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def request_origin(request: Request) -> str:
    """The request's own origin, `scheme://host[:port]`, as the browser names it in `Origin`.

    Behind a proxy in FORWARDED_ALLOW_IPS the scheme is the one it forwarded (`TrustedProxyMiddleware`);
    the host is the `Host` header, which the proxy must pass through unchanged.
    """
    return f"{request.url.scheme}://{request.url.netloc}"


def _origin_parts(origin: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


def is_cross_site(request: Request, public_url: str | None = None) -> bool:
    """Whether a state-changing request was sent by another site, by its Fetch metadata or Origin header.

    `Sec-Fetch-Site` must be `same-origin` (or `none`); `same-site` counts as foreign too, since a sibling
    subdomain is not this dashboard. An `Origin` must equal the request's own origin, or the origin of
    `public_url` (PUBLIC_URL, for a proxy that rewrites `Host`); `Origin: null` (sandboxed frames,
    redirects) is foreign. When a request carries neither header (old browsers, curl), the CSRF token
    alone decides, as OWASP recommends.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in _OWN_FETCH_SITES:
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    claimed = _origin_parts(origin)
    public = urlsplit(public_url) if public_url else None
    public_origin = _origin_parts(f"{public.scheme}://{public.netloc}") if public else None
    own = {_origin_parts(request_origin(request)), public_origin} - {None}
    return claimed is None or claimed not in own


Network = IPv4Network | IPv6Network


def _forwarded_host(entry: str) -> str | None:
    """The address of one X-Forwarded-For entry (`ip`, `ip:port`, `[v6]:port`), or None when it is none."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1:].partition("]")[0]
    elif entry.count(":") == 1:
        entry = entry.partition(":")[0]
    try:
        return str(ip_address(entry))
    except ValueError:
        return None


class TrustedProxyMiddleware:
    """The client address and scheme from `X-Forwarded-For`/`X-Forwarded-Proto`, only from FORWARDED_ALLOW_IPS.

    A peer outside `trusted` is the client, whatever it claims. From a trusted peer the client is the
    rightmost X-Forwarded-For entry that is not itself a trusted proxy (entries further left were
    written by the client and prove nothing). Applied twice (uvicorn configured alike), the result is the same.
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[Network] = ()) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def _trusts(self, host: str | None) -> bool:
        if not host:
            return False
        try:
            address = ip_address(host)
        except ValueError:
            return False
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] not in ("http", "websocket") or not self.trusted or not client or not self._trusts(client[0]):
            await self.app(scope, receive, send)
            return
        forwarded_for: list[str] = []
        proto: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for.extend(value.decode("latin-1").split(","))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip().lower()
        scope = dict(scope)
        if proto in ("http", "https"):
            scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        host = None
        for entry in reversed(forwarded_for):
            candidate = _forwarded_host(entry)
            if candidate is None:
                break
            host = candidate
            if not self._trusts(candidate):
                break
        if host is not None:
            scope["client"] = (host, 0)
        await self.app(scope, receive, send)

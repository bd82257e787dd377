"""The Starlette application: `/graphql` behind bearer tokens (GraphiQL self-hosted), `/healthz`, the dashboard."""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import strawberry
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from schema import (
    BackgroundOperations,
    Context,
    GraphQLLimits,
    Outbox,
    SpfChecker,
    authenticate_bearer,
    build_schema,
    measure_request,
    negotiate_language,
    request_cost,
    spend_api_points,
)
from schema.messages import limit_message, request_error_message
from web.dashboard import DashboardConfig, create_dashboard
from web.request_id import RequestIdMiddleware

__all__ = [
    "GRAPHIQL_CONTENT_SECURITY_POLICY",
    "GRAPHIQL_DIR",
    "GRAPHIQL_STATIC_PATH",
    "WebConfig",
    "create_app",
    "graphiql_page",
]

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1_000_000

# GraphiQL's pinned files (web/graphiql/README.md says which and from where), served by this service so the
# IDE works without internet. Its own path, apart from the dashboard's /static, and only outside production.
GRAPHIQL_DIR = Path(__file__).resolve().parent / "graphiql"
GRAPHIQL_STATIC_PATH = "/graphql/static"
# Scripts, styles and the API from this origin only: no inline script, no eval. Two exceptions, each the
# least that works: GraphiQL's CSS embeds its fonts and icons as data: URLs, and its dialogs add one <style>
# element (the scroll lock), which carries the page's per-response nonce; no inline style without it.
GRAPHIQL_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; font-src data:; "
    "img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
_GRAPHIQL_PAGE = (GRAPHIQL_DIR / "page.html").read_text(encoding="utf-8")


def graphiql_page() -> HTMLResponse:
    """The GraphiQL page with a fresh style nonce, under the GraphiQL CSP; never cached."""
    nonce = secrets.token_urlsafe(18)
    return HTMLResponse(
        _GRAPHIQL_PAGE.replace("{{ style_nonce }}", nonce),
        headers={
            "Content-Security-Policy": GRAPHIQL_CONTENT_SECURITY_POLICY.format(nonce=nonce),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        },
    )


@dataclass(frozen=True)
class WebConfig:
    """What the web front needs from the wiring: settings and two callables it must not build itself."""

    mailbox_domain: str
    database_ping: Callable[[], Awaitable[None]]
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None
    outbox: Outbox | None = None
    spf_checker: SpfChecker | None = None
    # Where merges and deletes of large accounts run (BACKGROUND_OPERATION_MESSAGES); None: always at once.
    background_operations: BackgroundOperations | None = None
    # The browser dashboard at `/`; None serves only the API (it needs SECRET_KEY for its sessions).
    dashboard: DashboardConfig | None = None
    # ENVIRONMENT=production: no GraphiQL, no introspection, no "Did you mean" suggestions.
    production: bool = False
    # GRAPHQL_MAX_FIELDS and GRAPHQL_MAX_NETWORK_FIELDS, for the API and the dashboard alike.
    graphql_limits: GraphQLLimits = field(default_factory=GraphQLLimits)
    # API_RATE_LIMIT: cost points per token and minute; 0 turns the limit off.
    api_rate_limit: int = 0
    # The rate limit's clock; tests pass a fake one so no window ends mid-test.
    clock: Callable[[], float] = time.time


class RateLimited(Exception):
    """The token spent its API_RATE_LIMIT points for this window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class RateCounterUnavailable(Exception):
    """The database that counts the rate limit did not answer."""


class _SchemaEndpoint(GraphQL[Context, None]):
    """Strawberry's ASGI view; the context was built by `GraphQLRoute` after authentication.

    Every refusal of a malformed request is a GraphQL-shaped JSON error, and each request first
    spends its cost from the token's rate limit.
    """

    def __init__(self, graphql_schema: strawberry.Schema, config: WebConfig) -> None:
        super().__init__(
            graphql_schema, graphql_ide=None if config.production else "graphiql", allow_queries_via_get=True
        )
        self.config = config
        self.graphql_schema = graphql_schema

    async def render_graphql_ide(self, request: Request) -> Response:
        # Strawberry's own page loads React and GraphiQL from unpkg.com; this one loads the pinned copies.
        return graphiql_page()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as exc:
            code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "BAD_REQUEST")
            response = _error(exc.status_code, code, _refusal_text(exc.reason, _language(scope)))
        except RateLimited as exc:
            message = limit_message("RATE_LIMITED", _language(scope), seconds=exc.retry_after)
            response = _error(429, "RATE_LIMITED", message, {"Retry-After": str(exc.retry_after)})
        except RateCounterUnavailable:
            response = _unavailable(_language(scope))
        await response(scope, receive, send)

    async def get_context(self, request: Request, response: Any) -> Context:  # type: ignore[override]
        context: Context = request.scope["state"]["graphql_context"]
        return context

    def decode_json(self, data: str | bytes) -> object:
        # The body (or GET's `variables`) must be a JSON object; json.loads raises ValueError on bad
        # UTF-8 and RecursionError on deep nesting, which would otherwise surface as a 500.
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            raise HTTPException(400, "BODY_NOT_JSON") from None
        if not isinstance(value, dict):
            raise HTTPException(400, "BODY_NOT_OBJECT")
        return value

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        data = await super().parse_http_body(request)
        if isinstance(data, list):  # batching is off; Strawberry refuses it before this
            raise HTTPException(400, "BATCHING_DISABLED")
        if not isinstance(data.operation_name, (str, type(None))):
            raise HTTPException(400, "OPERATION_NAME_NOT_STRING")
        return data

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Any,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        if self.config.api_rate_limit:
            measure = measure_request(
                self.graphql_schema._schema, request_data.query, request_data.variables, self.config.graphql_limits
            )
            if measure is not None and request_data.query is not None:
                context.document_measure = (request_data.query, measure)
            points = request_cost(measure) if measure is not None else 1
            try:
                window = await spend_api_points(
                    request.scope["state"]["bearer_secret"],
                    points,
                    limit=self.config.api_rate_limit,
                    clock=self.config.clock,
                )
            except Exception:
                log.exception("rate counter update failed")
                raise RateCounterUnavailable from None
            if window.exceeded:
                raise RateLimited(max(1, math.ceil(window.retry_after)))
        return await super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)


class GraphiQLAssets:
    """GraphiQL's pinned scripts and styles (web/graphiql/), sent with `nosniff` so each runs only as its own type."""

    def __init__(self) -> None:
        self.files = StaticFiles(directory=GRAPHIQL_DIR)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.files(scope, receive, send_with_headers)


# Strawberry's own refusals, by their English reason, and the text of ours each gets; our own refusals
# raise HTTPException with the text's key as the reason.
_STRAWBERRY_REASONS = {
    "Unable to parse request body as JSON": "BODY_NOT_JSON",
    "Batching is not enabled": "BATCHING_DISABLED",
    "No GraphQL query found in the request": "MISSING_QUERY",
    "Unsupported content type": "UNSUPPORTED_CONTENT_TYPE",
    "GraphQL only supports GET and POST requests.": "METHOD_NOT_ALLOWED",
    "The GraphQL operation's `query` must be a string or null, if provided.": "QUERY_NOT_STRING",
    "The GraphQL operation's `variables` must be an object or null, if provided.": "VARIABLES_NOT_OBJECT",
    "The GraphQL operation's `extensions` must be an object or null, if provided.": "EXTENSIONS_NOT_OBJECT",
    "mutations are not allowed when using GET": "MUTATION_OVER_GET",
    "Can't get GraphQL operation type": "OPERATION_NOT_FOUND",
    "Not Found": "GRAPHIQL_DISABLED",
}
_UNKNOWN_OPERATION = re.compile(r'Unknown operation named "(?P<name>.*)"\.', re.DOTALL)


def _refusal_text(reason: str, lang: str) -> str:
    """The text of a refused /graphql request in `lang`; a reason this code does not know stays as it is."""
    key = _STRAWBERRY_REASONS.get(reason, reason)
    if match := _UNKNOWN_OPERATION.fullmatch(reason):
        return request_error_message("UNKNOWN_OPERATION", lang, name=match["name"])
    try:
        return request_error_message(key, lang)
    except KeyError:
        return reason


def _language(scope: Scope) -> str:
    return negotiate_language(Request(scope).headers.get("accept-language"))


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers)


def _unauthorized(key: str, lang: str) -> JSONResponse:
    message = request_error_message(key, lang)
    return _error(401, "UNAUTHENTICATED", message, {"WWW-Authenticate": 'Bearer realm="mailaccounts"'})


def _unavailable(lang: str) -> JSONResponse:
    return _error(503, "UNAVAILABLE", request_error_message("DATABASE_UNAVAILABLE", lang))


class GraphQLRoute:
    """`/graphql`: GraphiQL for a browser's GET (development only); otherwise a bearer token decides the tenant."""

    def __init__(self, config: WebConfig, graphql_schema: strawberry.Schema) -> None:
        self.config = config
        self.view = _SchemaEndpoint(graphql_schema, config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if (
            not self.config.production
            and request.method == "GET"
            and "text/html" in request.headers.get("accept", "")
            and ("query" not in request.query_params)
        ):
            await (await self.view.render_graphql_ide(request))(scope, receive, send)
            return
        lang = negotiate_language(request.headers.get("accept-language"))
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            await _unauthorized("MISSING_BEARER_TOKEN", lang)(scope, receive, send)
            return
        try:
            principal = await authenticate_bearer(secret.strip())
        except Exception:
            log.exception("token lookup failed")
            await _unavailable(lang)(scope, receive, send)
            return
        if principal is None:
            await _unauthorized("UNKNOWN_TOKEN", lang)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["bearer_secret"] = secret.strip()
        state["graphql_context"] = Context(
            principal=principal,
            mailbox_domain=self.config.mailbox_domain,
            lang=lang,
            outbox=self.config.outbox,
            spf_checker=self.config.spf_checker,
            background_operations=self.config.background_operations,
        )
        await self.view(scope, receive, send)


def create_app(config: WebConfig) -> Starlette:
    """Build the application; the wiring in `mailaccounts.app` supplies database and lifespan."""
    # One schema per configuration, shared by the API and the dashboard.
    graphql_schema = build_schema(production=config.production, limits=config.graphql_limits)

    async def healthz(request: Request) -> Response:
        try:
            await config.database_ping()
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "up"})

    return Starlette(
        routes=[
            Route("/graphql", GraphQLRoute(config, graphql_schema), methods=["GET", "POST"]),
            *([] if config.production else [Mount(GRAPHIQL_STATIC_PATH, app=GraphiQLAssets())]),
            Route("/healthz", healthz, methods=["GET"]),
            *(
                [Mount("/", app=create_dashboard(config.dashboard, graphql_schema=graphql_schema))]
                if config.dashboard
                else []
            ),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(RequestBodyLimitMiddleware, max_body_size=MAX_REQUEST_BYTES),
        ],
        lifespan=config.lifespan,
    )

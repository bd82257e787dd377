"""The Starlette application: `/graphql` behind bearer tokens, `/healthz`, later the dashboard."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from schema import Context, Outbox, SpfChecker, authenticate_bearer, negotiate_language, schema
from web.dashboard import DashboardConfig, create_dashboard
from web.request_id import RequestIdMiddleware

__all__ = ["WebConfig", "create_app"]

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1_000_000


@dataclass(frozen=True)
class WebConfig:
    """What the web front needs from the wiring: settings and two callables it must not build itself."""

    mailbox_domain: str
    database_ping: Callable[[], Awaitable[None]]
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None
    outbox: Outbox | None = None
    spf_checker: SpfChecker | None = None
    # The browser dashboard at `/`; None serves only the API (it needs SECRET_KEY for its sessions).
    dashboard: DashboardConfig | None = None


class _SchemaEndpoint(GraphQL[Context, None]):
    """Strawberry's ASGI view; the context was built by `GraphQLRoute` after authentication."""

    async def get_context(self, request: Request, response: Any) -> Context:  # type: ignore[override]
        context: Context = request.scope["state"]["graphql_context"]
        return context


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers)


def _unauthorized(message: str) -> JSONResponse:
    return _error(401, "UNAUTHENTICATED", message, {"WWW-Authenticate": 'Bearer realm="mailaccounts"'})


class GraphQLRoute:
    """`/graphql`: GraphiQL for a browser's GET, otherwise a bearer token decides tenant and scope."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.view = _SchemaEndpoint(schema, graphql_ide="graphiql", allow_queries_via_get=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if (
            request.method == "GET"
            and "text/html" in request.headers.get("accept", "")
            and ("query" not in request.query_params)
        ):
            await (await self.view.render_graphql_ide(request))(scope, receive, send)
            return
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            await _unauthorized("Missing bearer token: send Authorization: Bearer <token>.")(scope, receive, send)
            return
        try:
            principal = await authenticate_bearer(secret.strip())
        except Exception:
            log.exception("token lookup failed")
            await _error(503, "UNAVAILABLE", "The service cannot reach its database; try again shortly.")(
                scope, receive, send
            )
            return
        if principal is None:
            await _unauthorized("Unknown or revoked token.")(scope, receive, send)
            return
        scope.setdefault("state", {})["graphql_context"] = Context(
            principal=principal,
            mailbox_domain=self.config.mailbox_domain,
            lang=negotiate_language(request.headers.get("accept-language")),
            outbox=self.config.outbox,
            spf_checker=self.config.spf_checker,
        )
        await self.view(scope, receive, send)


def create_app(config: WebConfig) -> Starlette:
    """Build the application; the wiring in `mailaccounts.app` supplies database and lifespan."""

    async def healthz(request: Request) -> Response:
        try:
            await config.database_ping()
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "up"})

    return Starlette(
        routes=[
            Route("/graphql", GraphQLRoute(config), methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *([Mount("/", app=create_dashboard(config.dashboard))] if config.dashboard else []),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(RequestBodyLimitMiddleware, max_body_size=MAX_REQUEST_BYTES),
        ],
        lifespan=config.lifespan,
    )

"""The GraphQL schema: Query and Mutation assembled from the per-noun modules, with request limits."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from strawberry import relay
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig

from schema.accounts import AccountMutation, AccountQuery
from schema.context import (
    BackgroundOperations,
    Context,
    Outbox,
    RateWindow,
    SpfChecker,
    authenticate_bearer,
    spend_api_points,
)
from schema.errors import MaskCrashes
from schema.ids import node_field
from schema.limits import (
    MAX_TOKENS,
    DocumentLimiter,
    GraphQLLimits,
    concurrent_network_executor,
    measure_request,
    request_cost,
)
from schema.mail import MailMutation, MailQuery
from schema.messages import negotiate_language
from schema.session import (
    DashboardIdentity,
    LoginResult,
    SignInLimits,
    SignInStatus,
    UnlockMailer,
    login_user,
    logout_user,
    principal_for_user,
    unlock_link_valid,
    unlock_with_link,
)
from schema.spf import SpfMutation, SpfQuery

__all__ = [
    "BackgroundOperations",
    "Context",
    "DashboardIdentity",
    "GraphQLLimits",
    "LoginResult",
    "Outbox",
    "RateWindow",
    "SignInLimits",
    "SignInStatus",
    "SpfChecker",
    "UnlockMailer",
    "authenticate_bearer",
    "build_schema",
    "login_user",
    "logout_user",
    "measure_request",
    "negotiate_language",
    "principal_for_user",
    "request_cost",
    "schema",
    "spend_api_points",
    "unlock_link_valid",
    "unlock_with_link",
]

MAX_DEPTH = 8
MAX_ALIASES = 20


def build_schema(*, production: bool = False, limits: GraphQLLimits | None = None) -> strawberry.Schema:
    """The schema for one configuration: `production` hides introspection and "Did you mean" suggestions.

    Every front end of one process (API and dashboard) uses the same built schema. The root types are
    made afresh per call, because Strawberry binds a root's `node` field to the first schema built from it.
    """

    @strawberry.type(name="Query")
    class Query(AccountQuery, MailQuery, SpfQuery):
        node: relay.Node | None = node_field(description="Any object by its global ID, or null.")

    @strawberry.type(name="Mutation")
    class Mutation(AccountMutation, MailMutation, SpfMutation):
        pass

    document_limits = limits or GraphQLLimits()
    extensions: list[Callable[[], SchemaExtension]] = [
        # First: it refuses over-limit documents before the other rules walk them.
        lambda: DocumentLimiter(document_limits, hide_suggestions=production),
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        MaskCrashes,
    ]
    if production:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        execution_context_class=concurrent_network_executor(hide_suggestions=production),
        config=StrawberryConfig(disable_field_suggestions=production),
    )


# The development configuration: what `make schema` prints and tests build on.
schema = build_schema()

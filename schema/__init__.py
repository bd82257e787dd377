"""The GraphQL schema: Query and Mutation assembled from the per-noun modules, with request limits."""

from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from schema.accounts import AccountMutation, AccountQuery
from schema.context import Context, Outbox, SpfChecker, authenticate_bearer
from schema.errors import should_mask_error
from schema.mail import MailMutation, MailQuery
from schema.messages import negotiate_language
from schema.session import DashboardIdentity, login_user, logout_user, principal_for_user
from schema.spf import SpfMutation, SpfQuery

__all__ = [
    "Context",
    "DashboardIdentity",
    "Outbox",
    "SpfChecker",
    "authenticate_bearer",
    "login_user",
    "logout_user",
    "negotiate_language",
    "principal_for_user",
    "schema",
]

MAX_DEPTH = 8
MAX_ALIASES = 20
MAX_TOKENS = 2000


@strawberry.type
class Query(AccountQuery, MailQuery, SpfQuery):
    node: relay.Node | None = relay.node(description="Any object by its global ID, or null.")


@strawberry.type
class Mutation(AccountMutation, MailMutation, SpfMutation):
    pass


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaskErrors(should_mask_error=should_mask_error),
    ],
)

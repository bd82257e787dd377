"""The per-request context every field reads: who calls, in which language, and fresh loaders."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from strawberry.dataloader import DataLoader

from resolvers.accounts import BackgroundOperations, message_counts
from resolvers.rate_limits import RateWindow, spend
from resolvers.sending import Outbox
from resolvers.spf import SpfChecker
from resolvers.tokens import Principal, authenticate, hash_token
from schema.limits import DocumentMeasure

__all__ = [
    "API_RATE_WINDOW",
    "BackgroundOperations",
    "Context",
    "Outbox",
    "RateWindow",
    "SpfChecker",
    "authenticate_bearer",
    "spend_api_points",
]

# API_RATE_LIMIT counts points per token over fixed windows of this many seconds.
API_RATE_WINDOW = 60


async def _load_message_counts(account_ids: list[int]) -> list[int]:
    counts = await message_counts(account_ids)
    return [counts[account_id] for account_id in account_ids]


@dataclass
class Context:
    """Built once per request by the HTTP endpoint or the dashboard."""

    principal: Principal
    mailbox_domain: str
    lang: str = "de"
    # How sendMessage reaches an SMTP server; None where the front end cannot send (sendMessage errors).
    outbox: Outbox | None = None
    # Runs SPF checks with the process-wide DNS cache; None where the front end cannot check.
    spf_checker: SpfChecker | None = None
    # Where merges and deletes of large accounts run; None: every merge and delete is one transaction.
    background_operations: BackgroundOperations | None = None
    message_count_loader: DataLoader[int, int] = field(default_factory=lambda: DataLoader(load_fn=_load_message_counts))
    # (query text, its measure) when the front end measured the document before execution (the API's rate
    # limit), so the document limiter need not walk it again.
    document_measure: tuple[str, DocumentMeasure] | None = None

    @property
    def tenant_id(self) -> int:
        return self.principal.tenant_id


async def authenticate_bearer(secret: str) -> Principal | None:
    """The principal for a bearer token (None if unknown or revoked), for front ends outside schema/."""
    return await authenticate(secret)


async def spend_api_points(
    secret: str, points: int, *, limit: int, clock: Callable[[], float] = time.time
) -> RateWindow:
    """Spend `points` of the bearer token's API_RATE_LIMIT budget, counted in the database for all instances.

    The counter is keyed by the token's hash, which identifies the token without its secret.
    """
    return await spend(f"api:{hash_token(secret)}", points, limit=limit, window=API_RATE_WINDOW, clock=clock)

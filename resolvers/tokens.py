"""Tenants and their API tokens: create, list, revoke, and authenticate a bearer token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from orm.models import ApiToken, Scope, Tenant

__all__ = [
    "TOKEN_PREFIX",
    "IssuedToken",
    "Principal",
    "Scope",
    "authenticate",
    "create_token",
    "ensure_tenant",
    "hash_token",
    "list_tokens",
    "revoke_token",
]

TOKEN_PREFIX = "mat_"
# last_used_at is a hint for administrators, so it is written at most this often per token.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every operation is scoped to, and what the caller may do."""

    tenant_id: int
    tenant_name: str
    scope: Scope

    @property
    def can_write(self) -> bool:
        return self.scope is Scope.WRITE


@dataclass(frozen=True)
class IssuedToken:
    """A token as created: the secret is only ever known here, the database keeps its hash."""

    token: ApiToken
    secret: str


def hash_token(secret: str) -> str:
    """SHA-256 of a token; tokens are 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def ensure_tenant(name: str) -> Tenant:
    """The tenant called `name`, created if new."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("a tenant name has 1 to 100 characters")
    tenant, _ = await Tenant.get_or_create(name=name)
    return tenant


async def create_token(tenant_name: str, scope: Scope, label: str = "") -> IssuedToken:
    """Create a token for the tenant (created if new) and return its secret once."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with in_transaction():
        tenant = await ensure_tenant(tenant_name)
        token = await ApiToken.create(
            tenant=tenant, label=label.strip()[:100], token_hash=hash_token(secret), scope=scope
        )
    return IssuedToken(token=token, secret=secret)


async def list_tokens(tenant_name: str | None = None) -> list[ApiToken]:
    """All tokens, or those of one tenant, with their tenant loaded, oldest first."""
    query = ApiToken.all().select_related("tenant").order_by("id")
    if tenant_name:
        query = query.filter(tenant__name=tenant_name)
    return await query


async def revoke_token(token_id: int) -> bool:
    """Revoke a token; False if there is no such token or it was revoked already."""
    updated = await ApiToken.filter(id=token_id, revoked_at__isnull=True).update(revoked_at=datetime.now(UTC))
    return bool(updated)


async def authenticate(secret: str) -> Principal | None:
    """The principal behind a bearer token, or None when it is unknown or revoked."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = (
        await ApiToken.filter(token_hash=hash_token(secret), revoked_at__isnull=True).select_related("tenant").first()
    )
    if token is None:
        return None
    now = datetime.now(UTC)
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
        await ApiToken.filter(id=token.id).update(last_used_at=now)
    return Principal(tenant_id=token.tenant_id, tenant_name=token.tenant.name, scope=token.scope)

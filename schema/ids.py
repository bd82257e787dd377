"""Relay global IDs of this API, decoded leniently: a malformed ID is an ID that does not exist."""

from __future__ import annotations

from strawberry.relay import GlobalID, GlobalIDValueError

from resolvers.errors import NotFound

__all__ = ["decode_id", "require_account_id"]


def decode_id(value: str, type_name: str) -> int | None:
    """The integer id inside a global ID of `type_name`, or None when it is malformed or of another type."""
    try:
        global_id = GlobalID.from_id(value)
    except (GlobalIDValueError, ValueError, TypeError):
        return None
    if global_id.type_name != type_name:
        return None
    try:
        number = int(global_id.node_id)
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def require_account_id(value: str, field: str = "accountId") -> int:
    """The integer id inside a MailAccount global ID; NotFound on `field` when it is malformed."""
    number = decode_id(value, "MailAccount")
    if number is None:
        raise NotFound(field)
    return number

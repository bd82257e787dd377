"""Relay global IDs of this API, decoded leniently: a malformed ID is an ID that does not exist."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.relay import GlobalID, GlobalIDValueError
from strawberry.relay.fields import NodeExtension
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from resolvers.errors import NotFound

__all__ = ["decode_id", "node_field", "node_row_id", "require_account_id"]

# The id column of each node type: `mail_account.id` is an int (32 bits), `message.id` a bigint. A larger
# number names no row, and PostgreSQL refuses to even compare it with the column.
_ID_LIMITS = {"MailAccount": 2**31, "Message": 2**63}


def node_row_id(type_name: str, node_id: str) -> int | None:
    """The row id of a node id (the part after the type in a global ID), or None when no row can have it."""
    if not node_id.isdigit():
        return None
    number = int(node_id)
    return number if 0 < number < _ID_LIMITS[type_name] else None


def decode_id(value: str, type_name: str) -> int | None:
    """The integer id inside a global ID of `type_name`, or None when it is malformed or of another type."""
    try:
        global_id = GlobalID.from_id(value)
    except (GlobalIDValueError, ValueError, TypeError):
        return None
    if global_id.type_name != type_name:
        return None
    return node_row_id(type_name, global_id.node_id)


def require_account_id(value: str, field: str = "accountId") -> int:
    """The integer id inside a MailAccount global ID; NotFound on `field` when it is malformed."""
    number = decode_id(value, "MailAccount")
    if number is None:
        raise NotFound(field)
    return number


class _ConcreteNodeExtension(NodeExtension):
    """Strawberry's `node` resolver, refusing IDs that name the `Node` interface itself.

    Strawberry resolves such an ID to the interface and calls its abstract `resolve_node`, which raises
    NotImplementedError: a crash for what is only a bad ID. It gets the readable GlobalIDValueError that
    IDs of other non-node types get.
    """

    def get_node_resolver(
        self, field: StrawberryField
    ) -> Callable[[strawberry.Info, GlobalID], relay.Node | Awaitable[relay.Node | None] | None]:
        resolve = super().get_node_resolver(field)

        def resolver(
            info: strawberry.Info,
            id: Annotated[GlobalID, strawberry.argument(description="The ID of the object.")],
        ) -> relay.Node | Awaitable[relay.Node | None] | None:
            definition = info.schema.get_type_by_name(id.type_name)
            if isinstance(definition, StrawberryObjectDefinition) and definition.is_interface:
                raise GlobalIDValueError(
                    f"Cannot resolve. GlobalID requires a GraphQL type, received `{id.type_name}`."
                )
            return resolve(info, id)

        return resolver


def node_field(**kwargs: Any) -> Any:
    """`relay.node()` whose IDs of an interface type are a readable error instead of a crash."""
    return strawberry.field(extensions=[_ConcreteNodeExtension()], default=strawberry.UNSET, **kwargs)

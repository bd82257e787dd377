"""The dashboard as a GraphQL client: the documents in web/operations/, run in-process through the schema."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import strawberry
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    OperationDefinitionNode,
    parse,
    print_ast,
    validate,
    visit,
)
from graphql.language import Visitor

from schema import BackgroundOperations, Context, DashboardIdentity, Outbox, SpfChecker, schema

__all__ = ["OPERATIONS_DIR", "Operation", "OperationFailed", "Operations", "SchemaClient", "present"]

log = logging.getLogger(__name__)

OPERATIONS_DIR = Path(__file__).parent / "operations"

DataT = TypeVar("DataT")
ValueT = TypeVar("ValueT")


class OperationFailed(Exception):
    """A document came back with top-level errors: a bug or a limit, never a user's mistake."""


@dataclass(frozen=True)
class Operation(Generic[DataT]):
    """A named operation of web/operations/ and the type of its `data` (a TypedDict in web/results.py)."""

    name: str
    data: type[DataT]


def present(value: ValueT | None, operation: Operation[Any]) -> ValueT:
    """`value`, which the API promises once a payload has no userErrors; OperationFailed if it broke that promise."""
    if value is None:
        log.error("dashboard operation %s returned no result and no userErrors", operation.name)
        raise OperationFailed(operation.name)
    return value


class _SpreadCollector(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _spreads(node: OperationDefinitionNode | FragmentDefinitionNode) -> set[str]:
    collector = _SpreadCollector()
    visit(node, collector)
    return collector.names


@dataclass(frozen=True)
class Operations:
    """Named operations, each printed as its own document with just the fragments it uses."""

    documents: dict[str, str]

    @classmethod
    def load(cls, directory: Path = OPERATIONS_DIR) -> Operations:
        """Read every `*.graphql` file of `directory`; operation and fragment names are unique across files."""
        operations: dict[str, OperationDefinitionNode] = {}
        fragments: dict[str, FragmentDefinitionNode] = {}
        for path in sorted(directory.glob("*.graphql")):
            text = path.read_text(encoding="utf-8")
            for definition in parse(text).definitions:
                if isinstance(definition, FragmentDefinitionNode):
                    name = definition.name.value
                    if name in fragments:
                        raise ValueError(f"{path.name}: fragment {name} is defined twice")
                    fragments[name] = definition
                elif isinstance(definition, OperationDefinitionNode):
                    if definition.name is None:
                        raise ValueError(f"{path.name}: every operation needs a name")
                    name = definition.name.value
                    if name in operations:
                        raise ValueError(f"{path.name}: operation {name} is defined twice")
                    operations[name] = definition
        documents = {}
        for name, operation in operations.items():
            needed: list[str] = []
            pending = sorted(_spreads(operation))
            while pending:
                fragment = pending.pop()
                if fragment in needed:
                    continue
                if fragment not in fragments:
                    raise ValueError(f"operation {name} uses the unknown fragment {fragment}")
                needed.append(fragment)
                pending.extend(sorted(_spreads(fragments[fragment])))
            document = DocumentNode(definitions=(operation, *(fragments[f] for f in sorted(needed))))
            documents[name] = print_ast(document)
        return cls(documents)

    def errors(self, graphql_schema: strawberry.Schema = schema) -> dict[str, list[str]]:
        """Validation errors of each document against the schema (empty when all are valid)."""
        found = {}
        for name, text in self.documents.items():
            messages = [error.message for error in validate(graphql_schema._schema, parse(text))]
            if messages:
                found[name] = messages
        return found


class SchemaClient:
    """Runs the dashboard's operations as the signed-in user's tenant, with German messages."""

    def __init__(
        self,
        operations: Operations,
        mailbox_domain: str,
        outbox: Outbox | None = None,
        spf_checker: SpfChecker | None = None,
        graphql_schema: strawberry.Schema | None = None,
        *,
        background_operations: BackgroundOperations | None = None,
    ) -> None:
        self.operations = operations
        self.background_operations = background_operations
        self.mailbox_domain = mailbox_domain
        self.outbox = outbox
        self.spf_checker = spf_checker
        # The API's schema, so production flags and document limits hold here too.
        self.schema = graphql_schema or schema

    async def run(
        self, identity: DashboardIdentity, operation: Operation[DataT], variables: Mapping[str, object] | None = None
    ) -> DataT:
        """The `data` of `operation`; OperationFailed when the schema answered with errors."""
        name = operation.name
        context = Context(
            principal=identity.principal,
            mailbox_domain=self.mailbox_domain,
            lang="de",
            outbox=self.outbox,
            spf_checker=self.spf_checker,
            background_operations=self.background_operations,
        )
        result = await self.schema.execute(
            self.operations.documents[name],
            variable_values=dict(variables or {}),
            context_value=context,
            operation_name=name,
        )
        if result.errors:
            log.error("dashboard operation %s failed: %s", name, "; ".join(e.message for e in result.errors))
            raise OperationFailed(name)
        # The one cast: the schema validated the document, and tests/dashboard/test_operation_results.py
        # proves that each TypedDict in web/results.py mirrors its document's selection.
        return cast(DataT, result.data)

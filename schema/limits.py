"""GraphQL work bounded before execution: expanded size, field-merge pairs, network-bound fields and cost."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    parse,
    validate,
)
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from resolvers.pagination import MAX_PAGE_SIZE
from schema.errors import PublicError
from schema.messages import DEFAULT_LANGUAGE, limit_message

__all__ = [
    "CACHED_DOCUMENT_CHARS",
    "CONCURRENT_FIELDS",
    "MAX_TOKENS",
    "NETWORK_BOUND_FIELDS",
    "DocumentLimiter",
    "DocumentMeasure",
    "GraphQLLimits",
    "concurrent_network_executor",
    "measure_document",
    "measure_request",
    "parse_document",
    "request_cost",
]

MAX_TOKENS = 2000
# The root fields that wait on the network (DNS, SMTP): limited per document and weighted in the cost.
NETWORK_BOUND_FIELDS = frozenset({"spfCheck", "spfCheckAll", "sendMessage", "setSmtpServer"})
# Those of them that are independent of each other and run concurrently. setSmtpServer is not: two in one
# document may change the same account, and a mutation's effects must follow the document's order.
CONCURRENT_FIELDS = frozenset({"spfCheck", "spfCheckAll", "sendMessage"})
# Cost points of a request (API_RATE_LIMIT): one per request, one per 100 objects its pages may
# return, and this many per network-bound field.
NETWORK_FIELD_COST = 10
OBJECTS_PER_POINT = 100


@dataclass(frozen=True)
class GraphQLLimits:
    """The per-document limits (GRAPHQL_MAX_FIELDS, GRAPHQL_MAX_NETWORK_FIELDS)."""

    max_fields: int = 2000
    max_network_fields: int = 3


@dataclass(frozen=True)
class DocumentMeasure:
    """What a document asks for, measured in time linear in its size.

    `selections` counts fields and fragment spreads with every fragment expanded where it is spread
    (a fragment's size is computed once, so the count stays linear even when it is astronomically
    large); the other figures are only computed when `selections` is within the limit.
    """

    selections: int
    # Pairs of same-named fields (and of fragments in one selection set) that graphql-core's
    # OverlappingFieldsCanBeMerged rule compares; bounded by GRAPHQL_MAX_FIELDS too.
    merge_pairs: int = 0
    network_fields: int = 0
    # Objects the requested pages may return; nested pages multiply (accounts by messages).
    page_objects: int = 0


# Documents up to this length are cached: real clients send the same few, and 256 of them stay small. A
# longer one (a 1 MB string literal passes the token limit) is parsed each time, never kept.
CACHED_DOCUMENT_CHARS = 16_384


@lru_cache(maxsize=256)
def _parse_cached(query: str) -> DocumentNode:
    return parse(query, max_tokens=MAX_TOKENS)


def parse_document(query: str) -> DocumentNode:
    """Parse with the token limit; the last short documents are cached by their text (one parse per request).

    Raises GraphQLError on a syntax error or too many tokens; errors are not cached.
    """
    if len(query) > CACHED_DOCUMENT_CHARS:
        return parse(query, max_tokens=MAX_TOKENS)
    return _parse_cached(query)


def _definitions(document: DocumentNode) -> tuple[list[OperationDefinitionNode], dict[str, FragmentDefinitionNode]]:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return operations, fragments


def _expanded_selections(
    operations: list[OperationDefinitionNode], fragments: dict[str, FragmentDefinitionNode]
) -> int:
    """Fields and spreads of every operation and fragment definition, fragments expanded (memoised)."""
    sizes: dict[str, int] = {}

    def fragment_size(name: str) -> int:
        if name not in sizes:
            # Marked before descending, so a cycle (NoFragmentCyclesRule refuses it) counts 0 and terminates.
            sizes[name] = 0
            fragment = fragments.get(name)
            if fragment is not None:
                sizes[name] = set_size(fragment.selection_set)
        return sizes[name]

    def set_size(selection_set: SelectionSetNode) -> int:
        total = 0
        for selection in selection_set.selections:
            total += 1
            if isinstance(selection, FragmentSpreadNode):
                total += fragment_size(selection.name.value)
            elif isinstance(selection, (FieldNode, InlineFragmentNode)) and selection.selection_set:
                total += set_size(selection.selection_set)
        return total

    # Validation walks each definition on its own, so each one counts, with the fragments it spreads.
    return sum(set_size(o.selection_set) for o in operations) + sum(fragment_size(name) for name in fragments)


Parent = GraphQLObjectType | GraphQLInterfaceType | None


class _MergedWalk:
    """Walks the document as execution merges it: fields grouped by response name, fragments expanded.

    Only run when the expanded size is within the limit, so the walk itself is bounded by that limit.
    Page sizes count where the schema's field takes `first`; unknown fields (refused later) weigh nothing.
    """

    def __init__(
        self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode], variables: Mapping[str, Any]
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.merge_pairs = 0
        self.network_fields = 0
        self.page_objects = 0

    def type_named(self, name: str) -> Parent:
        type_ = self.schema.get_type(name)
        return type_ if isinstance(type_, (GraphQLObjectType, GraphQLInterfaceType)) else None

    def collect(
        self, selection_sets: list[tuple[SelectionSetNode, Parent]]
    ) -> dict[str, list[tuple[FieldNode, Parent]]]:
        groups: dict[str, list[tuple[FieldNode, Parent]]] = {}
        seen_fragments: set[str] = set()
        pending = list(reversed(selection_sets))
        while pending:
            selection_set, parent = pending.pop()
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    groups.setdefault(key, []).append((selection, parent))
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    pending.append(
                        (selection.selection_set, self.type_named(condition.name.value) if condition else parent)
                    )
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    # Like execution, a fragment spread twice into one selection set is collected once.
                    if name not in seen_fragments and name in self.fragments:
                        seen_fragments.add(name)
                        fragment = self.fragments[name]
                        pending.append((fragment.selection_set, self.type_named(fragment.type_condition.name.value)))
        # graphql-core also compares every pair of fragments spread into one selection set.
        self.merge_pairs += len(seen_fragments) * (len(seen_fragments) - 1) // 2
        return groups

    def page_size(self, node: FieldNode, default: int, variable_defaults: Mapping[str, Any]) -> int:
        value: Any = default
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                name = argument.value.name.value
                value = self.variables.get(name, variable_defaults.get(name, default))
        if value is None:
            return default
        try:
            # Coerced as execution will coerce it: a variable 100.0 is the Int 100 and runs a full page.
            size = int(GraphQLInt.parse_value(value))
        except (GraphQLError, TypeError, ValueError):
            # Execution refuses it; until then it weighs a full page rather than nothing.
            return MAX_PAGE_SIZE
        # Pages over the maximum are refused (BAD_USER_INPUT); they weigh no more than a full page.
        return min(max(size, 0), MAX_PAGE_SIZE)

    def walk(
        self,
        selection_sets: list[tuple[SelectionSetNode, Parent]],
        multiplier: int,
        root: bool,
        variable_defaults: Mapping[str, Any],
    ) -> None:
        for fields in self.collect(selection_sets).values():
            self.merge_pairs += len(fields) * (len(fields) - 1) // 2
            name = fields[0][0].name.value
            if root and name in NETWORK_BOUND_FIELDS:
                self.network_fields += 1
            inner = multiplier
            children: list[tuple[SelectionSetNode, Parent]] = []
            paged = False
            for node, parent in fields:
                definition = parent.fields.get(name) if parent is not None else None
                first = definition.args.get("first") if definition is not None else None
                if first is not None and not paged:
                    paged = True
                    default = first.default_value if isinstance(first.default_value, int) else MAX_PAGE_SIZE
                    size = self.page_size(node, default, variable_defaults)
                    self.page_objects += multiplier * size
                    inner = multiplier * max(size, 1)
                if node.selection_set:
                    child = get_named_type(definition.type) if definition is not None else None
                    children.append(
                        (
                            node.selection_set,
                            child if isinstance(child, (GraphQLObjectType, GraphQLInterfaceType)) else None,
                        )
                    )
            if children:
                self.walk(children, inner, False, variable_defaults)


def _variable_defaults(operation: OperationDefinitionNode) -> dict[str, Any]:
    return {
        d.variable.name.value: int(d.default_value.value)
        for d in operation.variable_definitions or ()
        if isinstance(d.default_value, IntValueNode)
    }


def measure_document(
    document: DocumentNode,
    schema: GraphQLSchema,
    *,
    max_selections: int,
    variables: Mapping[str, Any] | None = None,
) -> DocumentMeasure:
    """Measure `document` against `schema`; over `max_selections` only the expanded size is computed.

    Nesting so deep that the measurement itself runs out of stack counts as over the limit.
    """
    operations, fragments = _definitions(document)
    try:
        selections = _expanded_selections(operations, fragments)
        if selections > max_selections:
            return DocumentMeasure(selections=selections)
        walk = _MergedWalk(schema, fragments, variables or {})
        for operation in operations:
            root = schema.get_root_type(operation.operation)
            walk.walk([(operation.selection_set, root)], 1, True, _variable_defaults(operation))
        for fragment in fragments.values():
            # Unused fragments are validated too; their pages and root fields are never executed.
            pages, network = walk.page_objects, walk.network_fields
            walk.walk([(fragment.selection_set, walk.type_named(fragment.type_condition.name.value))], 1, False, {})
            walk.page_objects, walk.network_fields = pages, network
    except RecursionError:
        return DocumentMeasure(selections=max_selections + 1)
    return DocumentMeasure(
        selections=selections,
        merge_pairs=walk.merge_pairs,
        network_fields=walk.network_fields,
        page_objects=walk.page_objects,
    )


def request_cost(measure: DocumentMeasure) -> int:
    """API_RATE_LIMIT points of one request: 1, plus page objects / 100 (rounded up), plus 10 per network field."""
    return 1 + math.ceil(measure.page_objects / OBJECTS_PER_POINT) + NETWORK_FIELD_COST * measure.network_fields


def measure_request(
    schema: GraphQLSchema, query: str | None, variables: Mapping[str, Any] | None, limits: GraphQLLimits
) -> DocumentMeasure | None:
    """The measure of a request's document with its variables, or None when there is none or it does not parse."""
    if not query:
        return None
    try:
        document = parse_document(query)
    except GraphQLError:
        return None
    return measure_document(document, schema, max_selections=limits.max_fields, variables=variables)



def limit_error(measure: DocumentMeasure, limits: GraphQLLimits, lang: str) -> GraphQLError | None:
    """The top-level error refusing `measure` under `limits`, or None when it is within them."""
    if measure.selections > limits.max_fields:
        return PublicError(limit_message("QUERY_TOO_COMPLEX", lang, limit=limits.max_fields), "QUERY_TOO_COMPLEX")
    if measure.merge_pairs > limits.max_fields:
        # The field-merge check compares same-named fields pairwise: its work grows with the square.
        return PublicError(limit_message("QUERY_REPEATS_FIELDS", lang, limit=limits.max_fields), "QUERY_TOO_COMPLEX")
    if measure.network_fields > limits.max_network_fields:
        return PublicError(
            limit_message("TOO_MANY_NETWORK_FIELDS", lang, limit=limits.max_network_fields),
            "TOO_MANY_NETWORK_FIELDS",
        )
    return None


class DocumentLimiter(SchemaExtension):
    """Parses through the shared cache and refuses over-limit documents before any other validation rule runs.

    graphql-core's rules (and Strawberry's depth and alias limiters) walk fragments once per spread and
    compare same-named fields pairwise, so they only get documents whose expanded size and merge pairs
    are within GRAPHQL_MAX_FIELDS: their work is then bounded by the limit, not by the expansion.
    """

    def __init__(self, limits: GraphQLLimits, *, hide_suggestions: bool) -> None:
        super().__init__()
        self.limits = limits
        self.hide_suggestions = hide_suggestions

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            # On a syntax error Strawberry parses it again and reports the error the usual way.
            with contextlib.suppress(GraphQLError):
                context.graphql_document = parse_document(context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            # The API measured this document already for its rate limit (with variables, which change only
            # the page sizes, not what is checked here): one walk per request, not two.
            known = getattr(context.context, "document_measure", None)
            measure = (
                known[1]
                if known is not None and known[0] == context.query
                else measure_document(document, context.schema._schema, max_selections=self.limits.max_fields)
            )
            lang = getattr(context.context, "lang", DEFAULT_LANGUAGE)
            error = limit_error(measure, self.limits, lang)
            # Setting the errors here tells Strawberry validation has run, so it does not run it again.
            if error is not None:
                context.pre_execution_errors = [error]
            else:
                context.pre_execution_errors = validate(
                    context.schema._schema,
                    document,
                    (*context.validation_rules, MaybeNullValidationRule, OneOfInputValidationRule),
                    hide_suggestions=self.hide_suggestions,
                )
        yield


class _NetworkConcurrentExecutor(StrawberryGraphQLCoreExecutionContext):
    """Mutation root fields run serially as the spec says, except adjacent independent network-bound fields
    (CONCURRENT_FIELDS) run together.

    A document's network-bound fields (at most GRAPHQL_MAX_NETWORK_FIELDS) each wait on DNS or SMTP
    for up to their own timeout; run one after another, N of them would hold the request N timeouts.
    They are independent of each other, so a run of them executes concurrently; every other field
    still waits for the fields before it.
    """

    hide_all_suggestions = False

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        if cls.hide_all_suggestions:
            kwargs["hide_suggestions"] = True
        return super().build(*args, **kwargs)

    def execute_fields_serially(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        runs: list[tuple[bool, GroupedFieldSet]] = []
        for key, details in grouped_field_set.items():
            network = details[0].node.name.value in CONCURRENT_FIELDS
            if runs and runs[-1][0] == network and network:
                runs[-1][1][key] = details
            else:
                runs.append((network, {key: details}))
        if not any(network and len(part) > 1 for network, part in runs):
            return super().execute_fields_serially(parent_type, source_value, path, grouped_field_set, position_context)

        async def execute_runs() -> dict[str, Any]:
            results: dict[str, Any] = {}
            serially = super(_NetworkConcurrentExecutor, self).execute_fields_serially
            for network, part in runs:
                run = self.execute_fields if network else serially
                result = run(parent_type, source_value, path, part, position_context)
                results.update(await result if self.is_awaitable(result) else cast("dict[str, Any]", result))
            return results

        return execute_runs()


class _NetworkConcurrentQuietExecutor(_NetworkConcurrentExecutor):
    hide_all_suggestions = True


def concurrent_network_executor(*, hide_suggestions: bool) -> type[StrawberryGraphQLCoreExecutionContext]:
    """The executor class: network-bound root fields concurrent; with `hide_suggestions` no "Did you mean"."""
    return _NetworkConcurrentQuietExecutor if hide_suggestions else _NetworkConcurrentExecutor

"""The TypedDicts in web/results.py mirror the selections of web/operations/*.graphql, field by field."""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any, TypedDict, get_args, get_origin, get_type_hints, is_typeddict

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    parse,
)

from schema import schema
from web.client import Operations
from web.results import OPERATIONS

SCALARS: dict[str, type] = {"String": str, "ID": str, "DateTime": str, "Int": int, "Boolean": bool, "Float": float}
Fragments = dict[str, FragmentDefinitionNode]


class MistypedProgress(TypedDict):
    """SpfCheckStatus's result without `finished` and with a nullable `withProblems`: both are wrong."""

    total: int
    checked: int
    ok: int
    withProblems: int | None


class MistypedStatusData(TypedDict):
    spfCheckStatus: MistypedProgress


def selected_fields(selections: Sequence[SelectionNode], fragments: Fragments) -> dict[str, FieldNode]:
    """The fields a selection set returns by response key, fragments spread in."""
    fields: dict[str, FieldNode] = {}
    for selection in selections:
        if isinstance(selection, FieldNode):
            fields[(selection.alias or selection.name).value] = selection
        elif isinstance(selection, FragmentSpreadNode):
            fields.update(selected_fields(fragments[selection.name.value].selection_set.selections, fragments))
        elif isinstance(selection, InlineFragmentNode):
            fields.update(selected_fields(selection.selection_set.selections, fragments))
    return fields


def object_mismatches(
    path: str,
    selections: Sequence[SelectionNode],
    parent: GraphQLObjectType | GraphQLInterfaceType,
    typed_dict: Any,
    fragments: Fragments,
) -> list[str]:
    """Where `typed_dict` differs from what the selection on `parent` returns."""
    if not is_typeddict(typed_dict):
        return [f"{path}: {typed_dict!r} is not a TypedDict for {parent.name}"]
    fields, hints = selected_fields(selections, fragments), get_type_hints(typed_dict)
    problems = [] if set(fields) == set(hints) else [f"{path}: selects {sorted(fields)}, typed {sorted(hints)}"]
    for key in sorted(set(fields) & set(hints)):
        node = fields[key]
        field_type = parent.fields[node.name.value].type
        sub = node.selection_set.selections if node.selection_set else ()
        problems += type_mismatches(f"{path}.{key}", field_type, sub, hints[key], fragments)
    return problems


def type_mismatches(
    path: str, field_type: GraphQLOutputType, selections: Sequence[SelectionNode], hint: Any, fragments: Fragments
) -> list[str]:
    """Where the Python type `hint` differs from the GraphQL type, nullability included."""
    members = get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    optional = type(None) in members
    if optional == isinstance(field_type, GraphQLNonNull):
        return [f"{path}: nullable in the schema is {not optional}, typed {hint!r}"]
    inner = next(member for member in members if member is not type(None))
    named = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    if isinstance(named, GraphQLList):
        if get_origin(inner) is not list:
            return [f"{path}: a list in the schema, typed {hint!r}"]
        return type_mismatches(f"{path}[]", named.of_type, selections, get_args(inner)[0], fragments)
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        return object_mismatches(path, selections, named, inner, fragments)
    if isinstance(named, GraphQLEnumType):
        return [] if inner is str else [f"{path}: enum {named.name} typed {hint!r}"]
    assert isinstance(named, GraphQLScalarType)
    return [] if SCALARS.get(named.name) is inner else [f"{path}: {named.name} typed {hint!r}"]


def document_mismatches(name: str, document: str, typed_dict: Any) -> list[str]:
    """Where the TypedDict of operation `name` differs from its printed document."""
    definitions = parse(document).definitions
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in definitions if isinstance(d, OperationDefinitionNode))
    graphql_schema = schema._schema
    root = graphql_schema.query_type if operation.operation is OperationType.QUERY else graphql_schema.mutation_type
    assert root is not None
    return object_mismatches(name, operation.selection_set.selections, root, typed_dict, fragments)


def test_every_operation_has_a_typed_result() -> None:
    """Each document in web/operations/ is declared in web/results.py, and nothing else is."""
    assert sorted(operation.name for operation in OPERATIONS) == sorted(Operations.load().documents)


def test_typed_results_mirror_the_documents() -> None:
    """Field names, nesting, lists, scalars and nullability of each TypedDict match its document."""
    documents = Operations.load().documents
    problems = [
        problem
        for operation in OPERATIONS
        for problem in document_mismatches(operation.name, documents[operation.name], operation.data)
    ]
    assert problems == []


def test_a_missing_field_is_reported() -> None:
    """The comparison is not vacuous: a TypedDict lacking a selected field, or wrong on nullability, is found."""
    document = Operations.load().documents["SpfCheckStatus"]
    problems = document_mismatches("SpfCheckStatus", document, MistypedStatusData)
    assert any("finished" in problem for problem in problems)
    assert any("withProblems" in problem and "nullable" in problem for problem in problems)

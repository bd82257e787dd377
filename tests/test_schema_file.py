"""schema.graphql in the repository is the printed schema."""

from __future__ import annotations

from pathlib import Path

from schema import schema


def test_schema_graphql_matches_the_code(repo_root: Path) -> None:
    """The committed schema.graphql equals the schema the code builds (run `make schema` after changes)."""
    committed = (repo_root / "schema.graphql").read_text()
    assert committed == schema.as_str() + "\n", "schema.graphql is out of date: run `make schema`"

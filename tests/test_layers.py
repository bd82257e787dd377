"""The packages depend on each other in one direction only, as docs/ARCHITECTURE.md describes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

OURS = {"orm", "resolvers", "schema", "web", "domaincheck", "mailflow", "mailaccounts", "texts"}
# package -> the project packages (and outside libraries) it must not import
FORBIDDEN = {
    "orm": OURS - {"orm"},
    "domaincheck": OURS - {"domaincheck"},
    "resolvers": {"schema", "web", "mailflow", "mailaccounts", "strawberry", "starlette"},
    "schema": {"orm", "web", "mailflow", "mailaccounts", "domaincheck"},
    "web": {"orm", "resolvers", "mailflow", "mailaccounts", "domaincheck"},
    "mailflow": {"schema", "web", "mailaccounts"},
    # The catalogue: everything above may use it, it uses nothing of the project (domaincheck may not use it).
    "texts": OURS - {"texts"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_one_way(repo_root: Path, package: str) -> None:
    """No module of the package imports what the layering forbids it (checked on the source, not at runtime)."""
    offenders = {
        str(path.relative_to(repo_root)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (repo_root / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    assert {name: roots for name, roots in offenders.items() if roots} == {}

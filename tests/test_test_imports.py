"""Tests share code through tests/support/ only: no test module imports another, none edits sys.path."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS_ROOT = Path(__file__).resolve().parent


def covered_modules(tests_root: Path) -> list[Path]:
    """The Python files of the test suite that the rule covers (tests/support/ itself may import anything)."""
    return [
        path
        for path in sorted(tests_root.rglob("*.py"))
        if path.relative_to(tests_root).parts[0] != "support"
    ]


def violations(path: Path, tests_root: Path) -> list[str]:
    """The imports of other test modules and the sys.path edits in one file, as `line: text`."""
    # Names of the test files outside tests/support/ (whose names, such as `dns`, are also real packages).
    local_names = {p.stem for p in tests_root.rglob("*.py") if p.relative_to(tests_root).parts[0] != "support"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        line: int = getattr(node, "lineno", 0)
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append(f"{line}: relative import")
                continue
            modules = [node.module or ""]
        elif isinstance(node, ast.Attribute) and node.attr == "path":
            if isinstance(node.value, ast.Name) and node.value.id == "sys":
                found.append(f"{line}: sys.path")
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "tests" and parts[1:2] != ["support"]:
                found.append(f"{line}: import {module}")
            elif parts[0] in local_names - {"__init__"}:
                # A bare name of a module next to the tests only imports through a sys.path edit or rootdir magic.
                found.append(f"{line}: import {module}")
    return found


def test_no_test_module_imports_another_or_edits_sys_path() -> None:
    """Every test file imports shared code from tests.support only and leaves sys.path alone."""
    offenders = {
        str(path.relative_to(TESTS_ROOT)): found
        for path in covered_modules(TESTS_ROOT)
        if (found := violations(path, TESTS_ROOT))
    }
    assert offenders == {}


def test_the_check_sees_each_kind_of_violation(tmp_path: Path) -> None:
    """The check reports an import of another test module, a bare import beside the tests, a relative import
    and a sys.path edit, and accepts tests.support and the project's packages."""
    (tmp_path / "support").mkdir()
    (tmp_path / "support" / "dns.py").write_text("")
    (tmp_path / "dns_server.py").write_text("")
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "import sys\n"
        "import dns.message\n"
        "from domaincheck.dns import DnsClient\n"
        "from tests.support.dns import LoopbackDnsServer\n"
        "from tests.conftest import Api\n"
        "from dns_server import StartServer\n"
        "from .conftest import thing\n"
        "sys.path.insert(0, 'x')\n"
    )
    assert violations(sample, tmp_path) == [
        "5: import tests.conftest",
        "6: import dns_server",
        "7: relative import",
        "8: sys.path",
    ]

"""The README documents every setting the code reads, with the same default."""

from __future__ import annotations

from pathlib import Path

from mailaccounts.settings import SETTINGS_HELP


def test_readme_lists_every_setting(repo_root: Path) -> None:
    """The README's settings table is exactly the settings the code reads, with their defaults and meanings."""
    readme = (repo_root / "README.md").read_text()
    table = readme.split("| variable | default | meaning |\n| --- | --- | --- |\n", 1)[1].split("\n\n", 1)[0]
    assert table.splitlines() == [f"| `{name}` | {default} | {meaning} |" for name, default, meaning in SETTINGS_HELP]


def test_quick_start_is_two_commands(repo_root: Path) -> None:
    """The quick start consists of exactly `make run` and `make test`."""
    readme = (repo_root / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make run", "make test"]

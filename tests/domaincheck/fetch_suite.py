"""Download the pyspf 2.0.14 sdist from PyPI and extract its SPF conformance YAML files.

Usage: ``python tests/domaincheck/fetch_suite.py [DEST]`` (default ``.cache/pyspf-2.0.14/test``).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "2.0.14"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DEST = REPO_ROOT / ".cache" / f"pyspf-{VERSION}" / "test"


def fetch(dest: Path = DEFAULT_DEST) -> list[Path]:
    """Download the sdist with pip and copy ``test/*.yml`` (and licence files) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"pyspf=={VERSION}",
                "-d",
                tmp,
            ],
            check=True,
        )
        archives = list(Path(tmp).glob("pyspf-*.tar.gz"))
        if not archives:
            raise SystemExit("pip did not download a pyspf sdist")
        written: list[Path] = []
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                parts = Path(member.name).parts
                if (
                    member.isfile()
                    and len(parts) >= 3
                    and parts[-2] == "test"
                    and parts[-1].endswith((".yml", ".LICENSE", ".CHANGES"))
                ):
                    source = archive.extractfile(member)
                    assert source is not None
                    target = dest / parts[-1]
                    target.write_bytes(source.read())
                    written.append(target)
    if not any(p.name == "rfc7208-tests.yml" for p in written):
        raise SystemExit("rfc7208-tests.yml not found in the pyspf sdist")
    return written


def main() -> None:
    """Command-line entry point."""
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DEST
    for path in fetch(dest):
        print(path)


if __name__ == "__main__":
    main()

"""Debian's Chromium for the browser tests, driven by PyPI's playwright (no browser download)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "needs_chromium"]

CHROMIUM = Path("/usr/bin/chromium")
# As root, headless, and without the background connections this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Without Chromium the browser tests are skipped; in CI (CI=true) a missing browser fails them.
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("CI") != "true",
    reason="browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)

"""`mailaccounts serve` stops cleanly: SIGTERM and SIGINT end it with exit code 0 (`make run` reports no error)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.serve import cli_environment, run, serve


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_0_on_a_stop_signal(tmp_path: Path, signum: signal.Signals) -> None:
    """After a graceful shutdown on SIGTERM or SIGINT the process exits 0, not 128 + the signal number."""
    env = cli_environment(tmp_path)
    run("migrate", env=env)
    with serve(env) as served:
        served.process.send_signal(signum)
        assert served.process.wait(timeout=60) == 0

"""`mailaccounts serve` stops cleanly: SIGTERM and SIGINT end it with exit code 0 (`make run` reports no error)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CLI = [sys.executable, "-m", "mailaccounts.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_0_on_a_stop_signal(tmp_path: Path, signum: signal.Signals) -> None:
    """After a graceful shutdown on SIGTERM or SIGINT the process exits 0, not 128 + the signal number."""
    http_port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite://{tmp_path}/mailaccounts.sqlite3",
        "SECRET_KEY": "s" * 40,
        "PORT": str(http_port),
        "SMTP_LISTEN": f"127.0.0.1:{_free_port()}",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run([*CLI, "migrate"], env=env, check=True, capture_output=True, timeout=60)
    proc = subprocess.Popen([*CLI, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "serve exited before it was stopped"
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""Running the `mailaccounts` command as a real process for the end-to-end tests, on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from mailaccounts.app import build_app
from mailaccounts.settings import Settings
from tests.support.dns import LoopbackDnsServer

CLI = [sys.executable, "-m", "mailaccounts.cli"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli_environment(folder: Path) -> dict[str, str]:
    """The environment of a CLI run with a fresh SQLite database under `folder` (the CLI tests use SQLite)."""
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite://{folder}/cli/mailaccounts.sqlite3",
        "SECRET_KEY": "s" * 40,
    }


def run(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `mailaccounts ARGS` to its end; with `check`, assert that it succeeded."""
    result = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@dataclass
class Served:
    base_url: str
    smtp_port: int
    output: list[str]
    process: subprocess.Popen[str]


@contextmanager
def serve(env: dict[str, str], *args: str, read_until: str | None = None) -> Iterator[Served]:
    """Start `mailaccounts serve ARGS` and wait for /healthz; stdout lines are read up to `read_until`."""
    http_port, smtp_port = free_port(), free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", *args],
        env={**env, "PORT": str(http_port), "SMTP_LISTEN": f"127.0.0.1:{smtp_port}", "LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        output: list[str] = []
        if read_until is not None:
            for line in proc.stdout:
                output.append(line.rstrip("\n"))
                if read_until in line:
                    break
        base_url = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "serve exited"
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield Served(base_url, smtp_port, output, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()


@asynccontextmanager
async def cli_process(
    command: str, env: dict[str, str], ready: bytes, *, graceful: bool
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`mailaccounts COMMAND` as a process, yielded once it printed `ready`; at the end, if still alive, stopped
    with SIGTERM (`graceful`, killed if it does not stop within 20 s) or killed."""
    process = await asyncio.create_subprocess_exec(
        *CLI, command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            while ready not in (line := await process.stdout.readline()):
                assert line, f"mailaccounts {command} exited before it was ready"
        yield process
    finally:
        if process.returncode is None:
            if graceful:
                process.terminate()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(20):
                        await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


@asynccontextmanager
async def smtp_process(env: dict[str, str]) -> AsyncIterator[int]:
    """`mailaccounts smtp` as a process on a free loopback port, yielded (the port) once it listens; stopped
    with SIGTERM at the end (killed if it does not stop)."""
    port = free_port()
    async with cli_process("smtp", {**env, "SMTP_LISTEN": f"127.0.0.1:{port}"}, b"SMTP listener on", graceful=True):
        yield port


@asynccontextmanager
async def worker_process(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """`mailaccounts worker` as a process, yielded once it runs; killed at the end if still alive."""
    async with cli_process("worker", env, b"job worker running", graceful=False) as process:
        yield process


@asynccontextmanager
async def uvicorn_on_loopback(app: ASGIApp) -> AsyncIterator[str]:
    """`app` served by uvicorn on a free loopback port on the running event loop (its database context
    included), for a real browser, with its lifespan (the job worker); yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def app_with_dns(settings: Settings, zone: Mapping[str, Any]) -> AsyncIterator[str]:
    """The real app served by uvicorn on a free loopback port, its SPF checks asking a loopback DNS server of `zone`."""
    async with LoopbackDnsServer(dict(zone)) as dns_server:
        settings = replace(settings, dns_nameservers=(dns_server.address,), dns_timeout=2.0)
        async with uvicorn_on_loopback(build_app(settings, manage_database=False)) as url:
            yield url

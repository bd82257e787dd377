"""Bulk SPF as users experience it: `spfCheckAll` over GraphQL on the running service vs pyspf, same DNS server.

    .venv/bin/python -m bench.spf.product [--db sqlite|postgres] [--rounds 2] [--delay-ms 20] [--domains 1000]

Seeds N accounts of distinct domains (bench/spf/zones.py, the engine benchmark's 1,000 domains) into a fresh
database (SQLite in a temp folder; with `--db postgres` a throwaway database on BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/postgres, dropped after). The loopback DNS server (its own process) answers
every query after `--delay-ms`. Rounds alternate, so load from elsewhere on the machine hits both alike:

- baseline: pyspf's check_host for every domain, one after the other (bench/spf/baseline.py in the benchmark
  venv, `python3 -m venv .cache/bench-spf && .cache/bench-spf/bin/pip install -r bench/spf/requirements.txt`);
- product: a fresh `mailaccounts serve` process (cold DNS cache, its job worker in-process), a write token,
  `spfCheckAll(input: {wait: true})` timed from the POST to the answer, then `spfCheckAll(input: {wait: false})`
  (the job `spf.check_accounts`) timed from the POST until `spfCheckStatus` says finished, each in its own
  fresh process. After each, every account is read back from the database: stored in this run, `spf_ok`
  and the problem codes as the zone generator expects.

Prints per round the seconds, the ratios pyspf ÷ product, the app process's CPU seconds and the load average.
pyspf at 20 ms takes about two minutes per round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.scratch import scratch_database_sync
from bench.spf.bench_spf import ServerProcess, run_baseline
from bench.spf.zones import Dataset, generate
from mailaccounts.database import database
from orm.models import MailAccount, Scope
from resolvers.accounts import create_account
from resolvers.tokens import create_token, ensure_tenant

ROOT = Path(__file__).resolve().parents[2]
TENANT = "bench"
CHECK_ALL = """
mutation All($wait: Boolean!) { spfCheckAll(input: {wait: $wait}) { summary { startedAt total checked } } }"""
STATUS = "query S($t: DateTime!) { spfCheckStatus(startedAt: $t) { total checked finished } }"
TARGET = 50.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def seed(url: str, data: Dataset) -> str:
    """One account per domain of the dataset through `create_account`; returns a write token's secret."""
    async with database(url):
        tenant = await ensure_tenant(TENANT)
        for number, expected in enumerate(data.expected):
            await create_account(tenant.id, f"info{number}@{expected.domain}", "Bench")
        return (await create_token(TENANT, Scope.WRITE)).secret


async def verify(url: str, data: Dataset, since: datetime) -> int:
    """Accounts whose verdict stored at or after `since` is the one the zone generator built (ok and codes)."""
    wanted = {e.domain: e.problems for e in data.expected}
    right = 0
    async with database(url):
        for account in await MailAccount.filter(tenant__name=TENANT):
            domain = account.email_normalized.rsplit("@", 1)[1]
            report = account.spf_report or {}
            codes = [problem["code"] for problem in report.get("problems", [])]
            fresh = account.spf_checked_at is not None and account.spf_checked_at >= since
            if fresh and codes == wanted[domain] and account.spf_ok is (not wanted[domain]):
                right += 1
    return right


@contextmanager
def serving(
    url: str, dns_address: tuple[str, int], extra_env: dict[str, str], root: Path = ROOT
) -> Iterator[tuple[str, int]]:
    """`mailaccounts serve` of the checkout `root` in a fresh process asking the loopback DNS server; yields its
    base URL and pid. The benchmark's own code always comes from this checkout."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-" + "k" * 40,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SMTP_LISTEN": f"127.0.0.1:{_free_port()}",
        "DNS_NAMESERVERS": f"{dns_address[0]}:{dns_address[1]}",
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    if root != ROOT:
        # Another checkout's code (e.g. the commit before a change) in this venv: its packages come first.
        env["PYTHONPATH"] = str(root)
    command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "mailaccounts.cli", "serve"]
    proc = subprocess.Popen(command, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mailaccounts serve exited with {proc.returncode}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mailaccounts serve did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


async def _graphql(http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {token}"}
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    data: dict[str, Any] = body["data"]
    return data


async def check_all(base: str, token: str, *, wait: bool, expected: int) -> tuple[float, datetime]:
    """Seconds from the POST of spfCheckAll until every account is checked; the check's start time."""
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        started = time.perf_counter()
        summary = (await _graphql(http, token, CHECK_ALL, {"wait": wait}))["spfCheckAll"]["summary"]
        if not wait:
            while True:
                status = (await _graphql(http, token, STATUS, {"t": summary["startedAt"]}))["spfCheckStatus"]
                if status["finished"]:
                    break
                await asyncio.sleep(0.05)
            summary = status | {"startedAt": summary["startedAt"]}
        seconds = time.perf_counter() - started
    if (summary["total"], summary["checked"]) != (expected, expected):
        raise RuntimeError(f"spfCheckAll checked {summary['checked']} of {summary['total']}, expected {expected}")
    return seconds, datetime.fromisoformat(summary["startedAt"])


def product_run(
    url: str,
    token: str,
    data: Dataset,
    server: ServerProcess,
    *,
    wait: bool,
    extra_env: dict[str, str],
    profile: str | None = None,
    root: Path = ROOT,
) -> dict[str, Any]:
    """One timed spfCheckAll on a fresh service process; seconds, the app's CPU seconds, right verdicts.

    With `profile`, py-spy (pip install py-spy) samples the service meanwhile and writes collapsed stacks there.
    """
    with serving(url, server.address, extra_env, root) as (base, pid):
        spy = None
        if profile:
            command = ["py-spy", "record", "--format", "raw", "--rate", "250", "-o", profile, "--pid", str(pid)]
            spy = subprocess.Popen([str(ROOT / ".venv" / "bin" / command[0]), *command[1:]])
            time.sleep(1.0)
        cpu, queries = _cpu_seconds(pid), server.queries()
        dns_cpu = _cpu_seconds(server.process.pid) if server.process.pid else 0.0
        seconds, since = asyncio.run(check_all(base, token, wait=wait, expected=len(data.expected)))
        cpu, queries = _cpu_seconds(pid) - cpu, server.queries() - queries
        dns_cpu = (_cpu_seconds(server.process.pid) if server.process.pid else 0.0) - dns_cpu
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
    correct = asyncio.run(verify(url, data, since))
    return {"wall": seconds, "cpu": cpu, "dns_cpu": dns_cpu, "queries": queries, "correct": correct}


def main() -> None:
    """Seed, serve, alternate pyspf and the product path, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/product pairs, alternating")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="delay of every DNS answer")
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--modes", default="wait,background", help="wait (spfCheckAll wait: true), background, both")
    parser.add_argument("--baseline-python", default=str(ROOT / ".cache" / "bench-spf" / "bin" / "python"))
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra setting for the service (repeatable)"
    )
    parser.add_argument(
        "--server",
        choices=["plain", "memo"],
        default="plain",
        help="plain: the loopback server builds every answer with dnspython (as bench_spf.py); memo: repeated "
        "queries are answered from memory, so the server takes little of the CPU the service needs",
    )
    parser.add_argument(
        "--compare-root",
        metavar="PATH",
        help="also run each mode with the service of this checkout (e.g. a worktree of the commit before a change), "
        "alternating with this one's; shown as MODE:before",
    )
    parser.add_argument("--profile", metavar="PREFIX", help="py-spy collapsed stacks of each product run")
    parser.add_argument("--no-baseline", action="store_true", help="time the product only (while tuning it)")
    args = parser.parse_args()
    if not args.no_baseline and not Path(args.baseline_python).exists():
        sys.exit(f"no pyspf venv at {args.baseline_python}: see the docstring of {__name__}")
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if args.compare_root:
        modes = [variant for mode in modes for variant in (f"{mode}:before", mode)]
    extra_env = dict(item.split("=", 1) for item in args.env)

    data = generate(args.domains)
    load_at_start, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M %Z")
    server = ServerProcess(data.zone)
    try:
        server.set_delay(args.delay_ms / 1000)
        if args.server == "memo":
            server.memoize()
        rows = _rounds(args, data, server, modes, extra_env)
    finally:
        server.stop()
    _print(args, data, rows, modes, load_at_start, started, extra_env)


def _rounds(
    args: argparse.Namespace, data: Dataset, server: ServerProcess, modes: list[str], extra_env: dict[str, str]
) -> list[dict[str, Any]]:
    """Seed a scratch database, then per round pyspf followed by each product mode."""
    rows: list[dict[str, Any]] = []
    with scratch_database_sync(args.db) as url:
        token = asyncio.run(seed(url, data))
        # Untimed: the server builds (and with `--server memo` keeps) its answers once, as bench_spf.py's warm-up.
        product_run(url, token, data, server, wait=True, extra_env=extra_env)
        for number in range(1, args.rounds + 1):
            row: dict[str, Any] = {"round": number, "load": os.getloadavg()[0]}
            if args.no_baseline:
                row["pyspf"] = {"wall": float("nan"), "correct": 0}
            else:
                row["pyspf"] = run_baseline(args.baseline_python, "pyspf", server.address, data, server)
                print(f"round {number}: pyspf {row['pyspf']['wall']:.1f} s", flush=True)
            for mode in modes:
                profile = f"{args.profile}-{args.db}-{mode.replace(':', '-')}-{number}.txt" if args.profile else None
                kind, _, before = mode.partition(":")
                root = Path(args.compare_root).resolve() if before else ROOT
                row[mode] = product_run(
                    url, token, data, server, wait=kind == "wait", extra_env=extra_env, profile=profile, root=root
                )
                print(f"round {number}: {mode} {row[mode]['wall']:.2f} s, {row[mode]['correct']} right", flush=True)
            rows.append(row)
    return rows


def _print(
    args: argparse.Namespace,
    data: Dataset,
    rows: list[dict[str, Any]],
    modes: list[str],
    load_at_start: tuple[float, float, float],
    started: str,
    extra_env: dict[str, str],
) -> None:
    n = len(data.expected)
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"started {started}; load average at start {load_at_start[0]:.2f} {load_at_start[1]:.2f}"
    )
    print(
        f"database: {args.db}; {n} accounts of distinct domains; every DNS answer after {args.delay_ms:g} ms; "
        f"{args.server} DNS server; {args.rounds} rounds"
        + (f"; MODE:before is the service of {args.compare_root}" if args.compare_root else "")
        + (f"; service settings {extra_env}" if extra_env else "")
    )
    header = "round  load  pyspf s  queries  right"
    for mode in modes:
        header += f"  | {mode:>17} s  ratio  app CPU s  DNS CPU s  queries  right"
    print(header)
    ratios: dict[str, list[float]] = {mode: [] for mode in modes}
    for row in rows:
        pyspf = row["pyspf"]
        line = f"{row['round']:5}  {row['load']:4.2f}  {pyspf['wall']:7.1f}  {pyspf.get('queries_sent', 0):7}"
        line += f"  {pyspf['correct']:5}"
        for mode in modes:
            ratio = row["pyspf"]["wall"] / row[mode]["wall"]
            ratios[mode].append(ratio)
            run = row[mode]
            line += f"  | {run['wall']:19.2f}  {ratio:5.1f}  {run['cpu']:9.2f}  {run['dns_cpu']:9.2f}"
            line += f"  {run['queries']:7}  {run['correct']:5}"
        print(line)
    all_right = all(row[mode]["correct"] == n for row in rows for mode in modes)
    if args.no_baseline:
        print("no baseline: the product's seconds only")
        sys.exit(0 if all_right else 1)
    for mode in modes:
        median = statistics.median(ratios[mode])
        verdict = "met" if median >= TARGET and all_right else "MISSED"
        print(
            f"{mode}: median {median:.1f}x faster than pyspf (rounds {', '.join(f'{r:.1f}' for r in ratios[mode])}); "
            f"target >= {TARGET:g}x with every verdict right: {verdict}"
        )
    if not all_right:
        print("WRONG VERDICTS: see the `right` columns")
        sys.exit(1)


if __name__ == "__main__":
    main()

"""SPF bulk-check benchmark: 1,000 generated domains audited through the loopback DNS server.

Runs the domaincheck audit (SPF + MX + DMARC, 50 at once) and check_host() for the platform IP,
then pyspf's check_host and checkdmarc (SPF + MX) from a separate venv, with the server answering
at once and with every answer delayed 20 ms. The DNS server runs in its own process; its rate
(queries/s) gives the ceiling: distinct questions ÷ rate.

    python3 -m venv .cache/bench-spf && .cache/bench-spf/bin/pip install -r bench/spf/requirements.txt
    .venv/bin/python bench/spf/bench_spf.py [--domains 1000] [--delays 0,20] [--baseline-python PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.connection
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Run by path (docs/SPF.md): the checkout root makes `tests.support` importable; zones.py sits next to this file.
sys.path[:0] = [str(ROOT), str(HERE)]

import dns.message  # noqa: E402
from zones import PLATFORM_IP, Dataset, generate  # noqa: E402

from domaincheck.audit import audit_domain  # noqa: E402
from domaincheck.dns import DnsClient  # noqa: E402
from domaincheck.spf import check_host  # noqa: E402

CONCURRENCY = 50


def _memoized(server: Any) -> Callable[..., bytes | None]:
    """The server's `handle` answering each repeated query from memory, only the query id patched in.

    The pure-Python server builds every answer with dnspython (about 300 µs of CPU), which on this machine's
    two cores competes with the client being measured; a real resolver answers from its cache in C. The zone
    does not change during a run, so an answer depends only on the rest of the query's wire.
    """
    handle = server.handle
    answers: dict[tuple[bytes, bool], bytes] = {}

    def memo(data: bytes, *, tcp: bool) -> bytes | None:
        key = (data[2:], tcp)
        wire = answers.get(key)
        if wire is None:
            wire = handle(data, tcp=tcp)
            if wire is not None:
                answers[key] = wire
            return wire
        server.stats.queries_received += 1
        return data[:2] + wire[2:]

    return memo


def _serve(zone: dict[str, Any], conn: multiprocessing.connection.Connection) -> None:
    """Child process: run the loopback server in a thread and obey commands from the pipe."""
    from tests.support.dns import ThreadedDnsServer

    with ThreadedDnsServer(zone, count_questions=False) as threaded:
        conn.send(threaded.address)
        while True:
            command, argument = conn.recv()
            if command == "delay":
                threaded.server.delay = argument
                conn.send("ok")
            elif command == "queries":
                conn.send(threaded.server.stats.queries_received)
            elif command == "memo":
                threaded.server.handle = _memoized(threaded.server)
                conn.send("ok")
            elif command == "stop":
                break


class ServerProcess:
    """The loopback DNS server in a child process."""

    def __init__(self, zone: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(zone, child), daemon=True)
        self.process.start()
        self.address: tuple[str, int] = tuple(self.conn.recv())  # type: ignore[assignment]

    def set_delay(self, seconds: float) -> None:
        """Delay every answer by ``seconds``."""
        self.conn.send(("delay", seconds))
        self.conn.recv()

    def memoize(self) -> None:
        """Answer repeated queries from memory from now on (see `_memoized`)."""
        self.conn.send(("memo", None))
        self.conn.recv()

    def queries(self) -> int:
        """Queries received so far."""
        self.conn.send(("queries", None))
        return int(self.conn.recv())

    def stop(self) -> None:
        """Stop the child."""
        self.conn.send(("stop", None))
        self.process.join(10)


async def measure_server_rate(address: tuple[str, int], questions: list[tuple[str, str]], window: int = 64) -> float:
    """Queries per second the server answers: a lean client keeps ``window`` queries outstanding."""
    loop = asyncio.get_running_loop()
    wires = [dns.message.make_query(name, rdtype, use_edns=0, payload=1232).to_wire() for name, rdtype in questions]
    done = asyncio.Event()
    state = {"sent": 0, "received": 0}
    total = len(wires)

    class Blaster(asyncio.DatagramProtocol):
        transport: asyncio.DatagramTransport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]

        def datagram_received(self, data: bytes, addr: Any) -> None:
            state["received"] += 1
            if state["sent"] < total:
                self.transport.sendto(wires[state["sent"]])
                state["sent"] += 1
            if state["received"] >= total:
                done.set()

    transport, _ = await loop.create_datagram_endpoint(Blaster, remote_addr=address)
    started = time.perf_counter()
    for wire in wires[:window]:
        transport.sendto(wire)
        state["sent"] += 1
    try:
        await asyncio.wait_for(done.wait(), 120)
    finally:
        transport.close()
    return total / (time.perf_counter() - started)


async def run_audits(address: tuple[str, int], data: Dataset) -> dict[str, Any]:
    """Audit every domain, 50 at once, with one shared DnsClient (cold cache)."""
    client = DnsClient([address], timeout=2.0, lifetime=5.0)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(domain: str) -> list[str]:
        async with limit:
            report = await audit_domain(domain, dns=client, platform_include="_spf.aranes.de", timeout=10.0)
            return report.problem_codes

    started = time.perf_counter()
    verdicts = await asyncio.gather(*(one(e.domain) for e in data.expected))
    wall = time.perf_counter() - started
    wrong = [
        (e.domain, e.category, e.problems, got)
        for e, got in zip(data.expected, verdicts, strict=True)
        if got != e.problems
    ]
    questions = client.stats.question_list()
    return {
        "wall": wall,
        "queries_sent": client.stats.queries_sent,
        "distinct_questions": client.stats.distinct_questions,
        "correct": len(data.expected) - len(wrong),
        "wrong": wrong[:10],
        "questions": questions,
    }


async def run_check_host(address: tuple[str, int], data: Dataset) -> dict[str, Any]:
    """check_host() for the platform IP on every domain, 50 at once, shared cache."""
    client = DnsClient([address], timeout=2.0, lifetime=5.0)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(domain: str) -> str:
        async with limit:
            return (await check_host(PLATFORM_IP, domain, f"postmaster@{domain}", domain, dns=client)).result

    started = time.perf_counter()
    results = await asyncio.gather(*(one(e.domain) for e in data.expected))
    wall = time.perf_counter() - started
    correct = sum(1 for e, r in zip(data.expected, results, strict=True) if (r == "pass") == e.authorized)
    return {
        "wall": wall,
        "queries_sent": client.stats.queries_sent,
        "distinct_questions": client.stats.distinct_questions,
        "correct": correct,
    }


def run_baseline(
    python: str, tool: str, address: tuple[str, int], data: Dataset, server: ServerProcess
) -> dict[str, Any]:
    """pyspf or checkdmarc in the benchmark venv, sequentially as those libraries work."""
    job = {"tool": tool, "address": list(address), "domains": [e.domain for e in data.expected], "ip": PLATFORM_IP}
    before = server.queries()
    output = subprocess.run(
        [python, str(HERE / "baseline.py")], input=json.dumps(job), capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(output.stdout)
    result["queries_sent"] = server.queries() - before
    results = result.pop("results")
    if tool == "pyspf":
        result["correct"] = sum(1 for e in data.expected if (results[e.domain] == "pass") == e.authorized)
    else:
        result["correct"] = sum(
            1 for e in data.expected if results[e.domain].endswith("/nomx") == (e.category in ("nomx", "nxdomain"))
        )
    return result


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of several runs, with every wall time kept for the record."""
    best = dict(min(runs, key=lambda run: run["wall"]))
    best["walls"] = [round(run["wall"], 3) for run in runs]
    return best


def main() -> None:
    """Generate, serve, run every contender at each delay and print/write the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--delays", default="0,20", help="server delays in ms, comma separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs of domaincheck per delay (best is kept)")
    parser.add_argument("--baseline-python", default=str(ROOT / ".cache" / "bench-spf" / "bin" / "python"))
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--output", default=str(HERE / "results.json"))
    args = parser.parse_args()

    data = generate(args.domains)
    server = ServerProcess(data.zone)
    report: dict[str, Any] = {"domains": args.domains, "concurrency": CONCURRENCY, "runs": {}}
    try:
        asyncio.run(run_audits(server.address, data))  # warm-up: the server builds its answers once
        for delay_ms in (int(d) for d in args.delays.split(",")):
            server.set_delay(delay_ms / 1000)
            run: dict[str, Any] = {}
            audits = [asyncio.run(run_audits(server.address, data)) for _ in range(args.repeat)]
            questions = audits[0]["questions"]
            for audit in audits:
                audit.pop("questions")
            ours = run["audit"] = _best(audits)
            run["check_host"] = _best([asyncio.run(run_check_host(server.address, data)) for _ in range(args.repeat)])
            if delay_ms == 0:
                rates = [asyncio.run(measure_server_rate(server.address, questions)) for _ in range(args.repeat)]
                rate = max(rates)
                run["server_rate_qps"] = round(rate)
                run["server_rates_qps"] = [round(r) for r in rates]
                run["ceiling_s"] = ours["distinct_questions"] / rate
                run["audit_vs_ceiling"] = ours["wall"] / run["ceiling_s"]
            if not args.skip_baselines and Path(args.baseline_python).exists():
                for tool in ("pyspf", "checkdmarc"):
                    run[tool] = run_baseline(args.baseline_python, tool, server.address, data, server)
                    run[f"{tool}_vs_audit"] = run[tool]["wall"] / ours["wall"]
                    run[f"{tool}_vs_check_host"] = run[tool]["wall"] / run["check_host"]["wall"]
            report["runs"][f"{delay_ms}ms"] = run
            print(json.dumps({f"{delay_ms}ms": run}, indent=2), flush=True)
    finally:
        server.stop()
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

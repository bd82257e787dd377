"""CPU seconds of the domaincheck audit over the 1,000 benchmark domains, for one checkout or several.

    .venv/bin/python bench/spf/audit_cpu.py /work/main /tmp/other-checkout [--pairs 3]

Each checkout runs in its own process (3 rounds, cold DNS cache each); checkouts alternate pair by pair so that
load from elsewhere on the machine hits all of them. Prints the process CPU time of each round.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import subprocess
import sys
import time


async def _measure(root: str) -> list[float]:
    sys.path[:0] = [root, f"{root}/bench/spf"]
    import bench_spf
    from zones import generate

    from domaincheck.audit import audit_domain
    from domaincheck.dns import DnsClient

    data = generate(1000)
    server = bench_spf.ServerProcess(data.zone)
    params = inspect.signature(audit_domain).parameters
    extra = {"platform_include": "_spf.aranes.de"} if "platform_include" in params else {}
    rounds = []
    try:
        for _ in range(3):
            client = DnsClient([server.address], timeout=2.0, lifetime=5.0)
            limit = asyncio.Semaphore(bench_spf.CONCURRENCY)

            async def one(domain: str, client: DnsClient = client, limit: asyncio.Semaphore = limit) -> object:
                async with limit:
                    return await audit_domain(domain, dns=client, timeout=10.0, **extra)

            started = time.process_time()
            await asyncio.gather(*(one(e.domain) for e in data.expected))
            rounds.append(time.process_time() - started)
    finally:
        server.stop()
    return rounds


def main() -> None:
    """Alternate the checkouts pair by pair and print each one's CPU seconds per round."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("roots", nargs="*")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.child))))
        return
    for _ in range(args.pairs):
        for root in args.roots:
            output = subprocess.run([sys.executable, __file__, "--child", root], capture_output=True, text=True)
            rounds = json.loads(output.stdout.strip().splitlines()[-1])
            print(root, " ".join(f"{cpu:.2f}" for cpu in rounds), flush=True)


if __name__ == "__main__":
    main()

"""Baseline runner for bench_spf.py: pyspf's check_host and checkdmarc over the loopback zones.

Runs in the separate benchmark venv (see requirements.txt), reads a JSON job on stdin
({"tool", "address", "domains", "ip"}) and prints {"wall", "results"} as JSON.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from typing import Any

import dns.resolver


def _resolver(address: list[Any], timeout: float) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [address[0]]
    resolver.port = int(address[1])
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def run_pyspf(job: dict[str, Any]) -> dict[str, Any]:
    """pyspf's check2() for each domain, one after the other (pyspf is synchronous)."""
    import spf

    dns.resolver.default_resolver = _resolver(job["address"], 5.0)
    results: dict[str, str] = {}
    started = time.perf_counter()
    for domain in job["domains"]:
        result, _explanation = spf.check2(i=job["ip"], s=f"postmaster@{domain}", h=domain, timeout=5)
        results[domain] = result
    return {"wall": time.perf_counter() - started, "results": results}


def run_checkdmarc(job: dict[str, Any]) -> dict[str, Any]:
    """checkdmarc's SPF check plus its MX lookup for each domain, one after the other."""
    from checkdmarc.smtp import get_mx_hosts
    from checkdmarc.spf import check_spf

    resolver = _resolver(job["address"], 5.0)
    dns.resolver.default_resolver = resolver
    results: dict[str, str] = {}
    started = time.perf_counter()
    for domain in job["domains"]:
        spf = check_spf(domain, nameservers=[job["address"][0]], timeout=5.0, resolver=resolver)
        try:
            mx = get_mx_hosts(domain, skip_tls=True, nameservers=[job["address"][0]], timeout=5.0, resolver=resolver)
            mx_ok = bool(mx.get("hosts"))
        except Exception:  # checkdmarc raises its own error classes for DNS problems
            mx_ok = False
        results[domain] = f"{'valid' if spf.get('valid') else 'invalid'}/{'mx' if mx_ok else 'nomx'}"
    return {"wall": time.perf_counter() - started, "results": results}


def main() -> None:
    """Read the job, run the tool, print the outcome."""
    warnings.simplefilter("ignore")
    job = json.load(sys.stdin)
    runner = {"pyspf": run_pyspf, "checkdmarc": run_checkdmarc}[job["tool"]]
    json.dump(runner(job), sys.stdout)


if __name__ == "__main__":
    main()

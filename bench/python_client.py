"""Wire throughput of the Python client beside the TypeScript client's, in the same run.

    .venv/bin/python bench/python_client.py [--seconds 1] [--rounds 5] [--cases 1:json,64:json,64:f64]

Echo-v0 (obsSize 8) through the real server (bench/protocol.ts's child: the protocol alone, no
dialog store), one request in flight at a time as an RL loop runs, the workload of
bench/protocol.ts (reset seed 1, actions i % 16, 300 ms warm-up). Per round, each case runs with
the sync client (colloquy.Client: requests go through its loop thread), the asyncio client
(colloquy.AsyncClient: on the caller's loop) and the TypeScript client (agents/client.ts, via
bench/python_client.ts); rates are medians over rounds, each Python rate's ratio to the TypeScript
one is the median of the rounds' paired ratios (load drifting on a shared machine cancels out).
Python steps include decoding the observations into the declared float32 arrays.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))

import colloquy  # noqa: E402


def sync_run(url: str, n: int, enc: str, seconds: float) -> float:
    with colloquy.Client(url) as c:
        s = c.make("Echo-v0", num_envs=n, obs_encoding=None if enc == "json" else enc)
        s.reset(seed=1)
        actions = np.arange(n) % 16
        t = time.perf_counter()
        while time.perf_counter() - t < 0.3:
            s.step(actions)
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            s.step(actions)
            steps += 1
        rate = steps / (time.perf_counter() - t0)
        s.close()
    return rate


async def aio_run(url: str, n: int, enc: str, seconds: float) -> float:
    c = await colloquy.AsyncClient.connect(url)
    s = await c.make("Echo-v0", num_envs=n, obs_encoding=None if enc == "json" else enc)
    await s.reset(seed=1)
    actions = np.arange(n) % 16
    t = time.perf_counter()
    while time.perf_counter() - t < 0.3:
        await s.step(actions)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        await s.step(actions)
        steps += 1
    rate = steps / (time.perf_counter() - t0)
    await s.close()
    await c.close()
    return rate


def ts_run(url: str, cases: str, seconds: float) -> dict[str, float]:
    out = subprocess.run(["node", "bin/run.mjs", "bench/python_client.ts", "--url", url, "--cases", cases, "--seconds", str(seconds)],
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=600).stdout
    return {f"{r['numEnvs']}:{r['obs']}": r["steps"] / r["seconds"] for r in json.loads(out.strip().splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", default="1:json,64:json,64:f64")
    args = ap.parse_args()
    cases = args.cases.split(",")
    proc = subprocess.Popen(["node", "bin/run.mjs", "bench/protocol.ts", "--child"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = json.loads(proc.stdout.readline())["port"]
        url = f"ws://127.0.0.1:{port}/v1/env"
        print(f"Python client bench: Echo-v0 (obsSize 8), one request in flight, {args.rounds} rounds x {args.seconds:g} s, median; "
              f"Python {platform.python_version()}, colloquy {colloquy.__version__}, node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}")
        rates: dict[str, dict[str, list[float]]] = {c: {"sync": [], "aio": [], "ts": []} for c in cases}
        for _ in range(args.rounds):
            ts = ts_run(url, args.cases, args.seconds)
            for c in cases:
                n, enc = c.split(":")
                rates[c]["ts"].append(ts[c])
                rates[c]["sync"].append(sync_run(url, int(n), enc, args.seconds))
                rates[c]["aio"].append(asyncio.run(aio_run(url, int(n), enc, args.seconds)))
        head = ["numEnvs", "obs", "TS steps/s", "TS env-steps/s", "Py sync steps/s", "Py sync env-steps/s", "sync/TS",
                "Py asyncio steps/s", "Py asyncio env-steps/s", "asyncio/TS"]
        rows = []
        for c in cases:
            n, enc = c.split(":")
            r = rates[c]
            ts, sy, ai = (statistics.median(r[k]) for k in ("ts", "sync", "aio"))
            rs = statistics.median(a / b for a, b in zip(r["sync"], r["ts"]))
            ra = statistics.median(a / b for a, b in zip(r["aio"], r["ts"]))
            rows.append([n, enc, f"{ts:,.0f}", f"{ts * int(n):,.0f}", f"{sy:,.0f}", f"{sy * int(n):,.0f}", f"{rs:.2f}",
                         f"{ai:,.0f}", f"{ai * int(n):,.0f}", f"{ra:.2f}"])
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
        print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
        for row in rows:
            print("  ".join(x.rjust(w) for x, w in zip(row, widths)))
        la = os.getloadavg()
        print(f"load average during the run: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count()} cores")
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(10)


if __name__ == "__main__":
    main()

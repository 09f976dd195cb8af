"""Throughput of the sandbox registry's ``POST /batch`` of 500 creates.

Two measures:

* ``core``: the registry's own work per batch (validation, one transaction, the writes), without HTTP: the
  CPU time and the wall time (which adds the waits: the commit's writes, a checkpoint's fsync);
* ``http``: end to end over loopback with a signing client (token once; every call signed), against a
  :class:`~regsync.sandbox.server.SandboxServer` in a thread or in a child process; in a child process also
  the sandbox process's own CPU time per batch (Linux ``/proc``), apart from the client's.

Run: ``/work/venv/bin/python bench/sandbox_batch.py [--batches 20] [--db sqlite://] [--mode both]``.
Prints ops/s for each.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import secrets
import statistics
import time
import uuid
from typing import Any

import httpx
import orjson
from calibration import loop_seconds

from regsync.sandbox.server import SandboxServer
from regsync.sandbox.service import BatchOp, Ctx, Registry
from regsync.sandbox.store import Store

_W = [pow(2, 17 - i, 11) for i in range(17)]


def id_number(n: int) -> str:
    first = f"230102{1950 + n % 50}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    # make the order unique per n via the area's last digits when n >= 1000
    first = f"23{n // 1000 % 100:02d}{n // 100000 % 100:02d}" + first[6:]
    v = (12 - sum(int(d) * w for d, w in zip(first, _W, strict=True)) % 11) % 11
    return first + ("X" if v == 10 else str(v))


def volunteer_op(n: int) -> dict[str, Any]:
    number = id_number(n)
    return {
        "op": "create",
        "type": "volunteer",
        "idempotencyKey": f"vk-{uuid.uuid4().hex}",
        "body": {
            "clientRef": f"v{n}",
            "name": "王小明",
            "idType": "RESIDENT_ID",
            "idNumber": number,
            "gender": "M" if int(number[16]) % 2 else "F",
            "birthDate": f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
            "phone": "13912345678",
            "regionCode": "230102",
            "skills": ["急救"],
            "homeProvince": "23",
        },
    }


def bench_core(db: str, batches: int) -> float:
    store = Store(db)
    reg = Registry(store, time.time, lambda: 7 * 86400)
    n = 0
    times = []
    walls = []
    for _b in range(batches):
        ops = []
        for _ in range(500):
            o = volunteer_op(n)
            n += 1
            ops.append(BatchOp(len(ops), o["op"], o["type"], None, None, o["idempotencyKey"], o["body"]))
        c = Ctx("bench", "23", time.time())
        t0, w0 = time.process_time(), time.perf_counter()
        out = reg.batch(c, ops, "req", key=f"b-{uuid.uuid4().hex}", fp="x")
        times.append(time.process_time() - t0)
        walls.append(time.perf_counter() - w0)
        assert all(r["status"] == 201 for r in out.data["results"]), out.data["results"][:2]
    store.close()
    med = statistics.median(times)
    print(
        f"core  {db:<24} {batches} batches of 500: median {med * 1000:.1f} ms CPU/batch "
        f"({statistics.median(walls) * 1000:.1f} ms wall) -> {500 / med:,.0f} ops/s"
    )
    return 500 / med


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_http(subprocess: bool, batches: int, db: str) -> float:
    with SandboxServer(db, subprocess=subprocess, rate_limit_rps=1000, rate_limit_burst=1000) as sbx:
        http = httpx.Client(base_url=sbx.base_url.rsplit("/api/v1", 1)[0], timeout=60)
        tok = http.post(
            "/api/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": sbx.client_id,
                "client_secret": sbx.client_secret,
            },
        ).json()["access_token"]
        n = 0
        cpu0 = process_cpu_s(sbx.pid)
        t0 = time.perf_counter()
        for _b in range(batches):
            body = orjson.dumps({"operations": [volunteer_op(n + i) for i in range(500)]})
            n += 500
            ts, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
            msg = "\n".join(["POST", "/api/v1/batch", "", ts, nonce, hashlib.sha256(body).hexdigest()])
            sig = hmac.new(sbx.client_secret.encode(), msg.encode(), hashlib.sha256).hexdigest()
            r = http.post(
                "/api/v1/batch",
                content=body,
                headers={
                    "Authorization": f"Bearer {tok}",
                    "X-Client-Id": sbx.client_id,
                    "X-Timestamp": ts,
                    "X-Nonce": nonce,
                    "X-Signature": sig,
                    "Idempotency-Key": uuid.uuid4().hex,
                    "Content-Type": "application/json",
                },
            )
            assert r.status_code == 200, r.text[:300]
        elapsed = time.perf_counter() - t0
        cpu1 = process_cpu_s(sbx.pid)
        http.close()
    mode = "process" if subprocess else "thread"
    server = (
        f" (sandbox process: {(cpu1 - cpu0) / batches * 1000:.1f} ms CPU/batch)"
        if cpu0 is not None and cpu1 is not None
        else ""
    )
    print(
        f"http  {mode:<8} {db:<15} {batches} batches of 500: {elapsed / batches * 1000:.1f} ms/batch "
        f"-> {batches * 500 / elapsed:,.0f} ops/s{server}"
    )
    return batches * 500 / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--db", default="sqlite://")
    parser.add_argument("--mode", choices=["core", "http", "both"], default="both")
    args = parser.parse_args()
    if args.mode in ("core", "both"):
        bench_core(args.db, args.batches)
    if args.mode in ("http", "both"):
        bench_http(False, args.batches, args.db)
        bench_http(True, args.batches, args.db)
    print(f"loop {loop_seconds():.3f} s (issue 17's machine-speed yardstick: the CPU time of 20 M additions)")


if __name__ == "__main__":
    main()

"""Simulated agents for the waiting-agents benchmark, in their own process.

    python -m benchmarks.agents_proc '{"port": P, "token": T, "agents": N}'

Each agent files its own approval request, then long-polls ``/v1/requests/{id}/wait`` (re-issuing
the poll as ``HttpBackend`` does) on its own connection until it is decided. Prints ``READY`` once
every agent is waiting (the server's ``hitl_long_polls_active`` gauge says so), then, when all are
decided, one JSON line: ``{"unblocked": {id: monotonic time}, "statuses": {...}}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from .rawhttp import Conn


async def main(port: int, token: str, admin: str, agents: int) -> None:
    # file the requests on a few keep-alive connections
    ids: list[int] = []
    conns = [await Conn("127.0.0.1", port, token).open() for _ in range(16)]

    async def filer(c: Conn, count: int) -> None:
        for _ in range(count):
            status, body = await c.request("POST", "/v1/requests", {"agent": "bot", "tool": "deploy",
                                                                    "args": {"n": len(ids)}, "timeout_s": 3600})
            assert status == 200, (status, body)
            ids.append(body["id"])

    per = [agents // len(conns) + (1 if i < agents % len(conns) else 0) for i in range(len(conns))]
    await asyncio.gather(*(filer(c, n) for c, n in zip(conns, per, strict=True)))
    for c in conns:
        c.close()

    unblocked: dict[int, float] = {}
    statuses: dict[str, int] = {}

    async def wait(rid: int) -> None:
        c = Conn("127.0.0.1", port, token)
        for attempt in range(20):
            try:
                await c.open()
                break
            except OSError:
                await asyncio.sleep(0.05 * (attempt + 1))
        try:
            while True:
                status, body = await c.request("GET", f"/v1/requests/{rid}/wait?timeout=60")
                if status == 200 and body["status"] != "pending":
                    unblocked[rid] = time.monotonic()
                    statuses[body["status"]] = statuses.get(body["status"], 0) + 1
                    return
                assert status in (200, 204), (status, body)
        finally:
            c.close()

    probe = await Conn("127.0.0.1", port, admin).open()

    async def active() -> float:
        _, text = await probe.request("GET", "/metrics", parse=False)
        for line in text.splitlines():
            if line.startswith("hitl_long_polls_active"):
                return float(line.split()[-1])
        return 0.0

    tasks: list[asyncio.Task[None]] = []
    while len(tasks) < len(ids):  # agents arrive in waves, not 10,000 SYNs at once
        wave = ids[len(tasks) : len(tasks) + 500]
        tasks += [asyncio.create_task(wait(rid)) for rid in wave]
        while await active() < len(tasks):
            await asyncio.sleep(0.05)
    probe.close()
    print(json.dumps({"ready": True, "ids": ids}), flush=True)
    await asyncio.gather(*tasks)
    print(json.dumps({"unblocked": unblocked, "statuses": statuses}), flush=True)


if __name__ == "__main__":
    a = json.loads(sys.argv[1])
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(a["port"], a["token"], a["admin"], a["agents"]))

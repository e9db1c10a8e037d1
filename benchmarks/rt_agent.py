"""The agent side of the decision round trip, in its own process.

    python -m benchmarks.rt_agent '{"store": PATH}'  |  '{"server": URL, "token": T}'  [+ "poll": true]

For each ``go`` line on stdin it files one approval request through the real Backend and prints
``{"id", "t_commit"}`` (monotonic clock, right after the store acknowledged the commit), then waits
for the decision and prints ``{"id", "t_done", "status"}``. ``wait_for_request`` is driven by the
change feed; with ``"poll": true`` the agent instead re-reads the request every second (the seed
article's ``wait_for_approval``: the baseline).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


def _emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main(cfg: dict[str, object]) -> None:
    from hitl_tui.models import RequestCreate

    if cfg.get("server"):
        from hitl_tui.backend.http import HttpBackend

        backend = HttpBackend(str(cfg["server"]), token=str(cfg["token"]))
    else:
        from hitl_tui.backend.local import LocalBackend
        from hitl_tui.store.sqlite import SQLiteStore

        backend = LocalBackend(SQLiteStore(str(cfg["store"])), actor="bot")
    poll = bool(cfg.get("poll"))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        await backend.list_requests(agent="bot", limit=1)  # connected and warm before the first request
        n = 0
        while True:
            line = (await reader.readline()).decode().strip()
            if line != "go":
                break
            n += 1
            req = await backend.create_request(
                RequestCreate(agent="bot", tool="deploy", args={"service": "api", "n": n}, summary=f"deploy #{n}")
            )
            _emit({"id": req.id, "t_commit": time.monotonic()})
            if poll:
                while True:
                    await asyncio.sleep(1.0)
                    got = await backend.get_request(req.id)
                    if not got.is_pending:
                        break
            else:
                got = await backend.wait_for_request(req.id, timeout=120)
            _emit({"id": req.id, "t_done": time.monotonic(), "status": got.status.value})
    finally:
        await backend.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))

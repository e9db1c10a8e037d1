"""The agent side of the decision round trip, in its own process.

    python -m benchmarks.rt_agent '{"store": PATH}'  |  '{"server": URL, "token": T}'  [+ "poll": true]

For each ``go`` line on stdin it files one approval request through the real Backend and prints
``{"id", "t_commit", "t_sent", "t_ack"}`` (monotonic clock), then waits for the decision and prints
``{"id", "t_done", "status"}``. ``t_sent``: just before the request is filed; ``t_ack``: when the
backend call returned. On the embedded store ``t_commit`` is the store's commit itself, taken on the
store's worker thread as ``COMMIT`` returns (the ack can lag it by a loop wake-up under load).
Through ``hitl serve`` the agent cannot see the server's commit: ``t_commit`` is the ack there, and
``t_sent`` bounds the commit from the other side. ``wait_for_request`` is driven by the change feed;
with ``"poll": true`` the agent instead re-reads the request every second (the seed article's
``wait_for_approval``: the baseline).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time


def _emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main(cfg: dict[str, object]) -> None:
    from hitl_tui.models import RequestCreate

    commits: list[tuple[int, float]] = []  # (event seq, monotonic time) of each commit on the embedded store

    if cfg.get("server"):
        from hitl_tui.backend.http import HttpBackend

        backend = HttpBackend(str(cfg["server"]), token=str(cfg["token"]))
    else:
        from hitl_tui.backend.local import LocalBackend
        from hitl_tui.store.sqlite import SQLiteStore

        store = SQLiteStore(str(cfg["store"]))
        backend = LocalBackend(store, actor="bot")
        publish = store.notifier.publish

        def on_publish(seq: int) -> None:  # the worker publishes right after its COMMIT returned
            if threading.current_thread().name == "hitl-sqlite" and seq > store.notifier.seq:
                commits.append((seq, time.monotonic()))
            publish(seq)

        store.notifier.publish = on_publish  # type: ignore[method-assign]
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
            commits.clear()
            t_sent = time.monotonic()
            req = await backend.create_request(
                RequestCreate(agent="bot", tool="deploy", args={"service": "api", "n": n}, summary=f"deploy #{n}")
            )
            t_ack = time.monotonic()
            t_commit = commits[0][1] if commits else t_ack
            _emit({"id": req.id, "t_commit": t_commit, "t_sent": t_sent, "t_ack": t_ack, "store_commit": bool(commits)})
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

"""Shared helpers for the SDK and gate CLI tests (real SQLite files, real subprocesses).

Kept in a ``test_`` module so it lives with the tests it serves; it holds one sanity test.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from hitl_tui.backend.local import LocalBackend
from hitl_tui.models import DecisionIn
from hitl_tui.presets import get_preset
from hitl_tui.store.sqlite import SQLiteStore

HITL = [sys.executable, "-m", "hitl_tui"]
CLI_TIMEOUT = 120.0


def open_local(path: Path | str, actor: str = "admin") -> LocalBackend:
    return LocalBackend(SQLiteStore(path), actor=actor)


async def load_preset(backend: LocalBackend, name: str = "seed") -> None:
    for cap in get_preset(name).capabilities:
        await backend.put_capability(cap, "admin", f"preset {name}")


async def wait_pending(backend: LocalBackend, tool: str | None = None, timeout: float = 60.0) -> int:
    """The id of the first request (for ``tool``) created in the store, from the change feed."""

    async def find() -> int:
        async for ev in backend.subscribe(after_seq=0):
            if ev.kind == "request.created" and (tool is None or ev.payload["tool"] == tool):
                return int(ev.payload["id"])
        raise AssertionError("the change feed ended")

    return await asyncio.wait_for(find(), timeout)


async def wait_escalation(backend: LocalBackend, timeout: float = 60.0) -> int:
    async def find() -> int:
        async for ev in backend.subscribe(after_seq=0):
            if ev.kind == "escalation.opened":
                return int(ev.payload["id"])
        raise AssertionError("the change feed ended")

    return await asyncio.wait_for(find(), timeout)


async def hitl(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run the real ``hitl`` CLI in a subprocess; returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *HITL,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), CLI_TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def approve_in_other_process(path: str, tool: str, reviewer: str, edited: dict[str, Any] | None = None) -> int:
    """Run in a separate process (multiprocessing): a second backend on the same file approves
    the first pending request for ``tool``. Returns the request id."""

    async def main() -> int:
        backend = open_local(path, reviewer)
        try:
            rid = await wait_pending(backend, tool)
            await backend.decide(rid, DecisionIn(decision="approve", edited_args=edited), reviewer)
            return rid
        finally:
            await backend.close()

    return asyncio.run(main())


async def test_support_sees_requests_from_the_change_feed(tmp_path: Path) -> None:
    from hitl_tui.models import RequestCreate

    backend = open_local(tmp_path / "s.db")
    try:
        waiter = asyncio.create_task(wait_pending(backend, "deploy"))
        await backend.create_request(RequestCreate(agent="a", tool="other"))
        req = await backend.create_request(RequestCreate(agent="a", tool="deploy"))
        assert await waiter == req.id
    finally:
        await backend.close()

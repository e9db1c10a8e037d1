"""Shared plumbing for the examples: a store, a console notifier, and a scripted reviewer.

In real life the reviewer is a person in ``hitl console`` or answering a Slack message; here a
second backend on the same SQLite file plays that part so each example finishes on its own.
Run any example with ``--manual`` to be the reviewer yourself (the commands are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

try:
    import hitl_tui  # noqa: F401
except ModuleNotFoundError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hitl_tui.backend.local import LocalBackend
from hitl_tui.models import ApprovalRequest, Escalation
from hitl_tui.presets import get_preset
from hitl_tui.sdk import Notification
from hitl_tui.store.sqlite import SQLiteStore


def options(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--store", help="SQLite file (default: a fresh temporary one)")
    parser.add_argument("--manual", action="store_true", help="decide yourself with the printed hitl commands")
    args = parser.parse_args()
    args.store = args.store or str(Path(tempfile.mkdtemp(prefix="hitl-example-")) / "hitl.db")
    return args


def backend(store: str, actor: str) -> LocalBackend:
    return LocalBackend(SQLiteStore(store), actor=actor)


async def load_preset(store: str, name: str = "seed") -> None:
    admin = backend(store, "admin")
    for cap in get_preset(name).capabilities:
        await admin.put_capability(cap, "admin", f"example: preset {name}")
    await admin.close()


class ConsoleNotifier:
    """Prints each notification, like a Slack channel would show it."""

    async def send(self, note: Notification) -> None:
        print("  [notify] " + note.text.replace("\n", "\n  [notify] "))


OnRequest = Callable[[LocalBackend, ApprovalRequest], Awaitable[None]]
OnEscalation = Callable[[LocalBackend, Escalation], Awaitable[None]]


@contextlib.asynccontextmanager
async def reviewer(
    store: str,
    name: str,
    *,
    on_request: OnRequest | None = None,
    on_escalation: OnEscalation | None = None,
    manual: bool = False,
) -> AsyncIterator[None]:
    """A scripted human: a second backend that reacts to new requests and escalations."""
    if manual:
        yield
        return
    human = backend(store, name)
    start = await human.last_seq()

    async def watch() -> None:
        async for ev in human.subscribe(after_seq=start):
            if ev.kind == "request.created" and on_request is not None:
                await on_request(human, await human.get_request(int(ev.payload["id"])))
            elif ev.kind == "escalation.message" and on_escalation is not None:
                esc = await human.get_escalation(int(ev.subject.split(":")[1]))
                if esc.messages[-1].role.value == "agent":
                    await on_escalation(human, esc)
            elif ev.kind == "escalation.opened" and on_escalation is not None:
                await on_escalation(human, await human.get_escalation(int(ev.payload["id"])))

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await human.close()


def show(label: str, value: Any) -> None:
    print(f"{label}: {value}")

"""Shared plumbing for the examples: a store, a console notifier, and a scripted reviewer.

In real life the reviewer is a person in ``hitl console`` or answering a Slack message; here a
second backend on the same SQLite file plays that part so each example finishes on its own.
Run any example with ``--manual`` to be the reviewer yourself (the commands are printed).

Examples never touch your configured store: without ``--store`` (or ``HITL_STORE``) each run uses a
fresh temporary file. Given a store of yours, they add the capabilities they need only where the
store has none and leave every capability you configured as it is (they say which); an example that
would have to change one of yours stops instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
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
from hitl_tui.errors import NotFound
from hitl_tui.models import ApprovalRequest, Capability, Escalation
from hitl_tui.presets import get_preset
from hitl_tui.sdk import Notification
from hitl_tui.store.sqlite import SQLiteStore

EXAMPLE_REASON = "example:"  # how the examples mark the capabilities they created
_THROWAWAY: set[str] = set()  # the temporary stores made here; any other store is the user's


def example_store(store: str | None) -> str:
    """``--store``, else ``HITL_STORE``, else a fresh temporary file: never the configured default
    store, so an example cannot rewrite a real policy by accident."""
    chosen = store or os.environ.get("HITL_STORE")
    if chosen:
        return chosen
    path = str(Path(tempfile.mkdtemp(prefix="hitl-example-")) / "hitl.db")
    _THROWAWAY.add(path)
    return path


def options(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--store", help="SQLite file (default: HITL_STORE, else a fresh temporary one)")
    parser.add_argument("--manual", action="store_true", help="decide yourself with the printed hitl commands")
    args = parser.parse_args()
    args.store = example_store(args.store)
    return args


def _example_made(cap: Capability) -> bool:
    return bool(cap.history) and (cap.history[0].reason or "").startswith(EXAMPLE_REASON)


class ExampleBackend(LocalBackend):
    """A LocalBackend that will not change a capability somebody else configured in the user's store."""

    def __init__(self, store: str, actor: str) -> None:
        super().__init__(SQLiteStore(store), actor=actor)
        self.path = store

    async def _guard(self, tool: str) -> None:
        if self.path in _THROWAWAY:
            return
        try:
            cap = await self.get_capability(tool)
        except NotFound:
            return
        if not _example_made(cap):
            sys.exit(
                f"this example would change {tool!r}, which {self.path} already configures; it leaves your "
                "store alone. Run it without --store / HITL_STORE (a throwaway store) or with a new file."
            )

    async def put_capability(self, cap: Capability, actor: str | None = None, reason: str | None = None) -> Capability:
        await self._guard(cap.tool)
        return await super().put_capability(cap, actor, reason)

    async def set_stage(self, tool: str, stage: Any, *args: Any, **kwargs: Any) -> Capability:
        await self._guard(tool)
        return await super().set_stage(tool, stage, *args, **kwargs)


def backend(store: str, actor: str) -> LocalBackend:
    return ExampleBackend(store, actor)


def _settings(cap: Capability) -> dict[str, Any]:
    return cap.model_dump(exclude={"history"})


async def set_up_policy(store: str, caps: list[Capability], label: str) -> None:
    """Give ``store`` the capabilities an example needs without overwriting anyone's: one the store
    lacks is created (marked as the example's), one an example created is reset, one somebody else
    configured is left exactly as it is (and a note says so)."""
    admin = LocalBackend(SQLiteStore(store), actor="admin")
    differ: list[Capability] = []
    try:
        for cap in caps:
            try:
                old = await admin.get_capability(cap.tool)
            except NotFound:
                old = None
            if old is not None and not _example_made(old):
                if _settings(old) != _settings(cap):
                    differ.append(old)
            elif old is None or _settings(old) != _settings(cap):
                await admin.put_capability(cap, "admin", f"{EXAMPLE_REASON} {label}")
    finally:
        await admin.close()
    if differ:
        kept = ", ".join(f"{c.tool} ({c.stage.value}, risk {c.risk.value})" for c in differ)
        print(
            f"note: {store} already configures {kept}; left as you set them, so this example may go "
            "differently (without --store / HITL_STORE it uses a throwaway store)",
            flush=True,
        )


async def load_preset(store: str, name: str = "seed") -> None:
    await set_up_policy(store, list(get_preset(name).capabilities), f"preset {name}")


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

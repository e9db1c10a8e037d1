"""1. Decision round trip, the headline: an agent process files a request; the reviewer console (the
real ``HitlConsole``, headless through Pilot, in this process) shows it; a key press (``a``)
approves it; the agent's wait returns.

Two legs, each timed on one clock (``time.monotonic``, shared by processes on Linux):

* commit -> on screen: from the agent's store commit (embedded: the time ``COMMIT`` returned on the
  agent's store thread; through ``hitl serve``: the agent's HTTP call returning, the nearest point
  the agent can see) to the first completed frame of the console that shows the request's row as
  pending (``ScreenProbe``: the app's own frame hook). Headless, Textual skips turning a frame into
  terminal bytes; the probe does that work too, so a frame counts when its bytes are ready;
* key press -> agent unblocked: from just before the ``a`` key is sent to the app to the agent's
  ``wait_for_request`` returning ``approved`` in its own process.

Run on the embedded store (agent and console each open the SQLite file) and through ``hitl serve``
(agent and console each use ``HttpBackend``). Target: p50 <= 25 ms and p99 <= 100 ms for each leg.
Baseline (same run): the agent waits by re-reading the request every second (the seed article's
``wait_for_approval``; HumanLayer polls every 3 s): key press -> unblocked.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import ROOT, Result, Server, env, make_result, make_tokens, median, ms, pct, sqlite_url, summary_ms
from .screen_probe import ScreenProbe

NAME = "round_trip"
TITLE = "Decision round trip"


def _encode_frames(app: Any) -> None:
    """Headless, ``App._display`` drops the frame before turning it into terminal bytes; do that
    work here (and throw the bytes away) so a frame's time includes it, as on a real terminal."""
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        render = getattr(renderable, "render_segments", None)
        if render is not None and app.is_headless:
            render(app.console)

    app._display = display


async def _session(
    backend: Any,
    agent_cfg: dict[str, Any],
    iterations: int,
    think: float = 0.0,
    instrument: Callable[[Any, Any, ScreenProbe], None] | None = None,
) -> dict[str, Any]:
    """``think``: the reviewer waits up to this long (uniformly) before the key press.
    ``instrument(app, table, probe)``: called once the console is up (tracing hooks); each
    iteration's raw times are then kept under ``"raw"``."""
    from hitl_tui.config import Settings
    from hitl_tui.console.app import HitlConsole
    from hitl_tui.console.widgets.approvals import ApprovalsPane
    from hitl_tui.console.widgets.virtual_table import VirtualTable

    app = HitlConsole(backend, Settings(reviewer="alice"))
    legs: dict[str, Any] = {"commit_to_screen": [], "key_to_unblocked": [], "ack_to_screen": [], "raw": []}
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.rt_agent", json.dumps(agent_cfg), cwd=ROOT, env=env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert agent.stdin is not None and agent.stdout is not None

    async def line() -> dict[str, Any]:
        async with asyncio.timeout(120):
            raw = await agent.stdout.readline()
        if not raw:
            raise RuntimeError("the agent process ended")
        return json.loads(raw)

    try:
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.query_one(ApprovalsPane).query_one(VirtualTable)
            _encode_frames(app)
            probe = ScreenProbe(app)

            def row_id(y: int) -> Any:
                if y == 0:
                    return None
                item = table.item_at(int(table.scroll_y) + y - 1)
                return None if item is None or not item.is_pending else ("row", item.id)

            probe.watch_rows(table, row_id)
            await probe.frame_where(lambda: app.feed.link.up)
            await pilot.pause(0.2)
            if instrument is not None:
                instrument(app, table, probe)
            for _ in range(iterations):
                t_go = time.monotonic()
                agent.stdin.write(b"go\n")
                await agent.stdin.drain()
                filed = await line()
                rid = filed["id"]
                shown = await probe.seen(("row", rid))
                legs["commit_to_screen"].append(shown - filed["t_commit"])
                legs["ack_to_screen"].append(shown - filed["t_ack"])
                index = table.index_of(rid)
                assert index is not None
                table.move_cursor(index)
                await pilot.pause()
                assert table.cursor_item is not None and table.cursor_item.id == rid
                if think:  # the poller's phase relative to the key press is then uniform
                    await asyncio.sleep(random.random() * think)
                t_key = time.monotonic()
                await pilot.press("a")
                done = await line()
                assert done["id"] == rid and done["status"] == "approved", done
                legs["key_to_unblocked"].append(done["t_done"] - t_key)
                if instrument is not None:
                    times = {"t_go": t_go, "t_shown": shown, "t_key": t_key, "t_done": done["t_done"]}
                    legs["raw"].append({**filed, **times})
                await pilot.pause(0.02 + random.random() * 0.02)  # off the store's 10 ms watch tick
    finally:
        if agent.returncode is None:
            agent.stdin.close()
            try:
                async with asyncio.timeout(15):
                    await agent.wait()
            except TimeoutError:
                agent.kill()
    return legs


async def embedded(
    path: Path, iterations: int, poll: bool = False, instrument: Callable[..., None] | None = None
) -> dict[str, Any]:
    from hitl_tui.backend.local import LocalBackend
    from hitl_tui.store.sqlite import SQLiteStore

    backend = LocalBackend(SQLiteStore(path), actor="alice")
    try:
        return await _session(
            backend, {"store": str(path), "poll": poll}, iterations, think=1.0 if poll else 0.0, instrument=instrument
        )
    finally:
        await backend.close()


async def served(
    url: str, tokens: dict[str, str], iterations: int, instrument: Callable[..., None] | None = None
) -> dict[str, Any]:
    from hitl_tui.backend.http import HttpBackend

    backend = HttpBackend(url, token=tokens["alice"])
    try:
        return await _session(backend, {"server": url, "token": tokens["bot"]}, iterations, instrument=instrument)
    finally:
        await backend.close()


def _legs_result(name: str, legs: dict[str, Any], base: dict[str, Any], notes: list[str]) -> Result:
    c2s, k2u = legs["commit_to_screen"], legs["key_to_unblocked"]
    figures = {**summary_ms(c2s, "commit_to_screen"), **summary_ms(k2u, "key_to_unblocked")}
    a2s = legs["ack_to_screen"]
    if a2s != c2s:  # the embedded store: how much a commit time taken at the agent's ack would flatter
        figures.update({"ack_to_screen_p50_ms": ms(pct(a2s, 50)), "ack_to_screen_p99_ms": ms(pct(a2s, 99))})
    baseline = summary_ms(base["key_to_unblocked"], "poll_1s_key_to_unblocked")
    checks = {
        "commit->screen p50 <= 25 ms": ms(pct(c2s, 50)) <= 25,
        "commit->screen p99 <= 100 ms": ms(pct(c2s, 99)) <= 100,
        "key->unblocked p50 <= 25 ms": ms(pct(k2u, 50)) <= 25,
        "key->unblocked p99 <= 100 ms": ms(pct(k2u, 99)) <= 100,
    }
    return make_result(
        name,
        figures,
        baseline,
        ratio=median(k2u) / median(base["key_to_unblocked"]),
        ratio_of="key->unblocked p50 / a waiter polling every second (p50)",
        target="each leg p50 <= 25 ms and p99 <= 100 ms",
        checks=checks,
        notes=notes,
    )


def run(quick: bool) -> list[Result]:
    n = 8 if quick else 150
    n_base = 2 if quick else 12
    with tempfile.TemporaryDirectory(prefix="bench-rt-") as tmp:
        work = Path(tmp)
        emb = asyncio.run(embedded(work / "embedded.db", n))
        base = asyncio.run(embedded(work / "baseline.db", n_base, poll=True))
        url = sqlite_url(work / "server.db")
        tokens = make_tokens(url, {"bot": "agent", "alice": "reviewer"})
        with Server(url, work) as server:
            srv = asyncio.run(served(server.url, tokens, n))
    common = [f"{n} decisions; console headless at 120x40 (frames still encoded to terminal bytes); agent in a "
              f"separate process; baseline: {n_base} decisions with a 1 s polling waiter on the embedded store, the "
              "key pressed 0-1 s (uniformly) after the request shows"]
    return [
        _legs_result("round trip (embedded store)", emb, base,
                     [*common, "commit: the agent's store thread, as COMMIT returns"]),
        _legs_result("round trip (through hitl serve)", srv, base,
                     [*common, "commit: the agent's HTTP call returning (the server's commit is earlier by the "
                               "response's way back)"]),
    ]

"""2. Console at scale: 100,000 pending requests and 100,000 review items (quick: 10,000 each).

The store is built by the real store's migrations and filled with direct SQL inserts (see
``bench_store_growth``). The real ``HitlConsole`` runs headless (120x40) in this process; every
time is taken from the app's own frames (``ScreenProbe``), not from Pilot round trips.

* first paint: from starting the app to the first frame showing a request row;
* key press -> repaint while scrolling (down, page down, end, home): the first frame that shows the
  cursor on its new row; also, for jumps, the first frame with that row's data (a page fetch);
* key press -> repaint while filtering: each typed character, to the frame showing it in the
  filter bar; then, after the bar's debounce (150 ms), the filter applied -> the list repainted;
* RSS of the console process (peak).

Baseline (same run, its own process): Textual's ``DataTable`` filled with the same 100,000 rows
(already in memory as strings, so the baseline pays no fetch), first paint and RSS.
Target: first paint <= 0.5 s, key press -> repaint p95 <= 30 ms, RSS <= 250 MB.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import ROOT, Result, env, make_result, rss_kib, summary_ms
from .screen_probe import ScreenProbe

NAME = "console_scale"
TITLE = "Console at scale"
T0 = time.time() - 200_000.0  # rows are recent, and pending ones expire in 30 days
SEARCH = "tool_17"


def build(path: Path, n: int) -> None:
    from hitl_tui.store.sqlite import SQLiteStore

    SQLiteStore(path).close_sync()  # the real schema, by the store's own migrations
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")  # scratch data
    conn.execute("BEGIN")
    args = json.dumps({"command": "kubectl rollout restart deploy/api", "namespace": "prod"})
    conn.executemany(
        "INSERT INTO requests(id, agent, tool, args, summary, risk, risk_rank, confidence, status, created_at, "
        "expires_at) VALUES (?,?,?,?,?,?,?,?,'pending',?,?)",
        ((i, f"agent-{i % 50}", f"tool_{i % 40}", args, f"restart the api deployment (#{i})",
          ("low", "medium", "high", "critical")[i % 4], i % 4, 50 + i % 50, T0 + i, T0 + 30 * 86400)
         for i in range(1, n + 1)),
    )
    conn.executemany(
        "INSERT INTO reviews(id, agent, tool, args, result, result_length, created_at, reviewed) "
        "VALUES (?,?,?,?,?,?,?,0)",
        ((i, f"agent-{i % 50}", f"tool_{i % 40}", args, "deployment restarted", 20, T0 + i) for i in range(1, n + 1)),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def expected_total(path: Path, search: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT COUNT(*) FROM requests WHERE status='pending' AND (instr(lower(tool), ?) > 0 OR "
            "instr(lower(agent), ?) > 0 OR instr(lower(COALESCE(summary,'')), ?) > 0)", (search,) * 3
        ).fetchone()[0]
    finally:
        conn.close()


async def console(path: Path, n: int, quick: bool) -> dict[str, Any]:
    from hitl_tui.backend.local import LocalBackend
    from hitl_tui.config import Settings
    from hitl_tui.console.app import HitlConsole
    from hitl_tui.console.widgets.approvals import ApprovalsPane
    from hitl_tui.console.widgets.filter_bar import FilterBar
    from hitl_tui.console.widgets.virtual_table import VirtualTable
    from hitl_tui.store.sqlite import SQLiteStore

    filtered_total = expected_total(path, SEARCH)
    backend = LocalBackend(SQLiteStore(path), actor="alice")
    changed_at: list[float] = []

    def hook(message: Any) -> None:
        if isinstance(message, FilterBar.Changed):
            changed_at.append(time.monotonic())

    app = HitlConsole(backend, Settings(reviewer="alice"))
    out: dict[str, Any] = {}
    probe = ScreenProbe(app)

    def data_row(widget: Any, y: int) -> Any:
        if widget.id != "approvals-table" or y == 0:
            return None
        return "data" if widget.item_at(int(widget.scroll_y) + y - 1) is not None else None

    undo = probe.watch_class(VirtualTable, data_row)
    t0 = time.monotonic()
    try:
        async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
            pane = app.query_one(ApprovalsPane)
            table = pane.query_one(VirtualTable)
            t_paint = await probe.seen("data", timeout=60)
            out["first_paint_s"] = t_paint - t0
            out["total_shown"] = table.total
            await pilot.pause(0.3)

            async def key(k: str, cond: Any, *more: Any) -> list[float]:
                """Press ``k``; for each condition, the time to the first frame where it holds."""
                futs = [probe.expect(c) for c in (cond, *more)]
                t = time.monotonic()
                await pilot.press(k)
                return [await probe.wait(f) - t for f in futs]

            def cursor_at(i: int) -> Any:
                return lambda: table.cursor == i

            def data_at(i: int) -> Any:
                return lambda: table.cursor == i and table.item_at(i) is not None

            scroll, jumps_data = [], []
            downs = 30 if quick else 300
            for _ in range(downs):
                want = table.cursor + 1
                scroll += await key("down", cursor_at(want))
            pages = 5 if quick else 40
            for _ in range(pages):
                want = min(table.row_count - 1, table.cursor + max(1, table.size.height - 2))
                moved, data = await key("pagedown", cursor_at(want), data_at(want))
                scroll.append(moved)
                jumps_data.append(data)
            for k, want in (("end", table.row_count - 1), ("home", 0), ("end", table.row_count - 1), ("home", 0)):
                moved, data = await key(k, cursor_at(want), data_at(want))
                scroll.append(moved)
                jumps_data.append(data)
                await pilot.pause(0.05)
            out.update(summary_ms(scroll, "scroll_key_to_repaint"))
            out.update(summary_ms(jumps_data, "jump_key_to_data"))

            bar = pane.query_one(FilterBar)
            typing, applied = [], []
            rounds = 1 if quick else 8
            for _ in range(rounds):
                await pilot.press("slash")
                await pilot.pause(0.05)
                for i, ch in enumerate(SEARCH):
                    text = SEARCH[: i + 1]
                    if i == len(SEARCH) - 1:  # the last key: the list follows after the debounce
                        changed_at.clear()
                        listed = probe.expect(lambda: table.total == filtered_total and table.loaded
                                              and pane.filter.text == SEARCH)
                    typing += await key("underscore" if ch == "_" else ch, lambda text=text: bar.value == text)
                t_list = await probe.wait(listed)
                applied.append(t_list - changed_at[0] if changed_at else float("nan"))
                whole = probe.expect(lambda: table.total == n and not pane.filter)
                typing += await key("escape", lambda: bar.value == "")  # clear the filter: the whole list again
                await probe.wait(whole)
                await pilot.pause(0.05)
            out.update(summary_ms(typing, "filter_key_to_repaint"))
            out.update(summary_ms(applied, "filter_applied_to_list"))
            out["rss_mb"] = rss_kib(os.getpid()) / 1024
            out["rss_peak_mb"] = rss_kib(os.getpid(), "VmHWM") / 1024
    finally:
        undo()
        await backend.close()
    return out


def datatable_baseline(path: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.datatable_baseline", str(path)], env=env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"DataTable baseline failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[Result]:
    n = 10_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        path = Path(tmp) / "console.db"
        build(path, n)
        base = datatable_baseline(path)
        ours = asyncio.run(console(path, n, quick))
    keys_p95 = max(ours["scroll_key_to_repaint_p95_ms"], ours["filter_key_to_repaint_p95_ms"])
    return [
        make_result(
            f"console at scale ({n:,} requests + {n:,} reviews)",
            ours,
            base,
            ratio=ours["first_paint_s"] / base["datatable_first_paint_s"],
            ratio_of="our first paint / DataTable with the same rows (first paint)",
            target="first paint <= 0.5 s; key press -> repaint p95 <= 30 ms (scrolling, filtering); RSS <= 250 MB",
            checks={
                "first paint <= 0.5 s": ours["first_paint_s"] <= 0.5,
                "scroll key->repaint p95 <= 30 ms": ours["scroll_key_to_repaint_p95_ms"] <= 30,
                "filter key->repaint p95 <= 30 ms": ours["filter_key_to_repaint_p95_ms"] <= 30,
                "RSS <= 250 MB": ours["rss_peak_mb"] <= 250,
                "all rows counted": ours["total_shown"] == n,
            },
            notes=[f"key press -> repaint p95 (worst of scrolling and filtering): {keys_p95:.1f} ms",
                   "the filter bar applies typed text after a 150 ms debounce; filter_applied_to_list times "
                   "the list from then"],
        )
    ]

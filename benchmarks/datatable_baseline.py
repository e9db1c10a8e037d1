"""Baseline for the console benchmark: Textual's own ``DataTable`` with the same rows.

    python -m benchmarks.datatable_baseline STORE.db

The pending requests are read into memory (as the strings the table shows) before the clock
starts, so the baseline pays only for the table: ``add_rows`` and its first paint. Prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from .common import rss_kib
from .screen_probe import ScreenProbe


async def main(path: Path) -> dict[str, float]:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    conn = sqlite3.connect(path)
    rows = [tuple(str(v) for v in r) for r in conn.execute(
        "SELECT id, risk, tool, agent, summary, confidence FROM requests WHERE status='pending' "
        "ORDER BY risk_rank DESC, id DESC")]
    conn.close()

    class Table(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            t = self.query_one(DataTable)
            t.add_columns("ID", "RISK", "TOOL", "AGENT", "SUMMARY", "CONF")
            t.add_rows(rows)

    app = Table()
    probe = ScreenProbe(app)
    probe.watch_class(DataTable, lambda table, y: "data" if y > 0 and table.row_count > 0 else None)
    t0 = time.monotonic()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(DataTable)
        t_paint = await probe.seen("data", timeout=120)
        await pilot.pause()
        return {"datatable_first_paint_s": t_paint - t0, "datatable_rows": table.row_count,
                "datatable_rss_peak_mb": rss_kib(os.getpid(), "VmHWM") / 1024}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))

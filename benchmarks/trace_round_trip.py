"""Where the decision round trip's commit -> on screen time goes, stage by stage.

    python -m benchmarks.trace_round_trip [--n 150] [--served] [--out FILE]

Runs the round trip benchmark's own session (``bench_round_trip._session``: the real console,
headless, and the agent in its own process) with timestamps taken at each stage, in the console's
process, by wrapping methods on the running instances (the code under test is unchanged):

    commit         the agent's store commit (embedded) or its HTTP call returning (served)
    watch          the console store's data_version watcher publishes the new seq (embedded)
    hub_wake       the event hub's wait_for_change returns (embedded)
    read           the hub's events_after returns with the event (embedded)
    event          the console's LiveFeed hands the event to the app (both)
    fetch_start    the approvals table starts the reload that brings the row
    fetch_done     that reload's list_requests returned
    swap           the rows are swapped in (refresh requested)
    render         the compositor starts rendering the table for the frame that shows it
    shown          that frame is complete (and encoded to terminal bytes)

It prints p50/p95/p99 of each stage, the slowest iterations stage by stage, and the garbage
collector's pauses that fell inside a commit -> shown window.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .common import ROOT, Server, make_tokens, pct, sqlite_url

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STAGES = ["commit", "watch", "hub_wake", "read", "event", "fetch_start", "fetch_done", "swap", "render", "shown"]


class Tracer:
    def __init__(self) -> None:
        self.marks: dict[str, list[tuple[float, Any]]] = defaultdict(list)
        self.gc: list[tuple[float, float, int]] = []  # (start, seconds, generation)
        self.idle: list[tuple[float, float]] = []  # the hub's idle checks: (start, seconds)
        self._gc_start = 0.0
        self._fetch_no = 0
        self.frames: list[tuple[float, float, list[str]]] = []  # (end, seconds, widgets rendered)
        self.cpu: dict[str, list[tuple[float, float]]] = defaultdict(list)  # main thread CPU: (t, thread_time)
        self._rendered: list[str] = []
        self._frame_start: float | None = None
        self.profiler: Any = None  # a pyinstrument Profiler: runs from a new row's swap to its frame
        self._known: set[Any] = set()
        self._swapped = False

    def mark(self, stage: str, info: Any = None) -> None:
        now = time.monotonic()
        self.marks[stage].append((now, info))
        if stage == "event":
            self.cpu[stage].append((now, time.thread_time()))

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.monotonic()
        else:
            self.gc.append((self._gc_start, time.monotonic() - self._gc_start, info["generation"]))

    def install(self, app: Any, table: Any, probe: Any) -> None:
        from textual.screen import Screen
        from textual.widget import Widget

        gc.callbacks.append(self._on_gc)
        tracer = self
        render_any = Widget.render_lines
        refresh_layout = Screen._refresh_layout
        compositor_refresh = Screen._compositor_refresh

        def any_render_lines(widget: Any, crop: Any) -> Any:
            tracer._rendered.append(type(widget).__name__)
            return render_any(widget, crop)

        def on_refresh_layout(screen: Any, *args: Any, **kwargs: Any) -> None:
            tracer._frame_start = tracer._frame_start or time.monotonic()
            refresh_layout(screen, *args, **kwargs)

        def on_compositor_refresh(screen: Any) -> None:
            tracer._frame_start = tracer._frame_start or time.monotonic()
            compositor_refresh(screen)

        Widget.render_lines = any_render_lines  # type: ignore[method-assign]
        Screen._refresh_layout = on_refresh_layout  # type: ignore[method-assign]
        Screen._compositor_refresh = on_compositor_refresh  # type: ignore[method-assign]
        self._undo = [
            (Widget, "render_lines", render_any),
            (Screen, "_refresh_layout", refresh_layout),
            (Screen, "_compositor_refresh", compositor_refresh),
        ]
        display = app._display

        def traced_display(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if tracer.profiler is not None and tracer.profiler.is_running and tracer._swapped:
                tracer.profiler.stop()
            if renderable is not None:
                now = time.monotonic()
                start = tracer._frame_start or now
                tracer.frames.append((now, now - start, sorted(set(tracer._rendered))))
                tracer.cpu["frame"].append((now, time.thread_time()))
            tracer._rendered.clear()
            tracer._frame_start = None

        app._display = traced_display
        feed = app.feed
        on_event = feed.on_event

        def traced_event(event: Any) -> None:
            self.mark("event", (event.seq, event.subject, str(event.kind)))
            if self.profiler is not None and not self.profiler.is_running and event.kind == "request.created":
                self._swapped = False
                self.profiler.start()
            on_event(event)

        feed.on_event = traced_event

        fetch = table._fetch

        async def traced_fetch(offset: int, limit: int) -> Any:
            self._fetch_no += 1
            no = self._fetch_no
            self.mark("fetch_start", no)
            page = await fetch(offset, limit)
            self.mark("fetch_done", (no, {getattr(i, "id", None) for i in page.items}))
            return page

        table._fetch = traced_fetch
        swap = table._swap

        def traced_swap(pages: dict[int, list[Any]], total: int, **kwargs: Any) -> None:
            ids = {i.id for page in pages.values() for i in page}
            if ids - self._known:
                self._swapped = True
            self._known |= ids
            swap(pages, total, **kwargs)
            self.mark("swap", ids)

        table._swap = traced_swap
        render_lines = table.render_lines

        def traced_render_lines(crop: Any) -> Any:
            self.mark("render")
            return render_lines(crop)

        table.render_lines = traced_render_lines

        store = getattr(app.backend, "store", None)
        if store is None:
            return
        notifier = store.notifier
        publish = notifier.publish

        def traced_publish(seq: int) -> None:
            if threading.current_thread().name == "hitl-sqlite-watch" and seq > notifier.seq:
                self.mark("watch", seq)
            publish(seq)

        notifier.publish = traced_publish
        wait_for_change = store.wait_for_change

        async def traced_wait(after: int, timeout: float) -> int:
            newest = await wait_for_change(after, timeout)
            self.mark("hub_wake", newest)
            return newest

        store.wait_for_change = traced_wait
        events_after = store.events_after

        async def traced_events_after(seq: int, limit: int = 1000) -> Any:
            events = await events_after(seq, limit)
            self.mark("read", events[-1].seq if events else seq)
            return events

        store.events_after = traced_events_after
        for name in ("check", "expire_due"):  # the hub's once-a-second idle pass
            original = getattr(store, name)

            async def traced_idle(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                start = time.monotonic()
                try:
                    return await _original(*args, **kwargs)
                finally:
                    self.idle.append((start, time.monotonic() - start))

            setattr(store, name, traced_idle)

    def uninstall(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        for cls, name, fn in getattr(self, "_undo", ()):
            setattr(cls, name, fn)

    # ----------------------------------------------------------------- analysis
    def _first(self, stage: str, after: float, pred: Any = None) -> tuple[float, Any] | None:
        for t, info in self.marks.get(stage, ()):
            if t >= after and (pred is None or pred(info)):
                return t, info
        return None

    def timeline(self, raw: dict[str, Any]) -> dict[str, float]:
        rid = raw["id"]
        out: dict[str, float] = {"commit": raw["t_commit"], "shown": raw["t_shown"]}
        ev = self._first("event", raw["t_go"], lambda i: i[1] == f"request:{rid}" and i[2] == "request.created")
        if ev is None:
            return out
        seq = ev[1][0]
        out["event"] = ev[0]
        since = raw["t_go"]
        for stage in ("watch", "hub_wake", "read"):
            hit = self._first(stage, since, lambda s: s >= seq)
            if hit is None or hit[0] > ev[0]:  # the event came another way (a wake for an earlier change)
                break
            out[stage] = since = hit[0]
        done = self._first("fetch_done", raw["t_go"], lambda i: rid in i[1])
        if done is not None:
            no = done[1][0]
            start = next(t for t, n in self.marks["fetch_start"] if n == no)
            out["fetch_start"], out["fetch_done"] = start, done[0]
        sw = self._first("swap", raw["t_go"], lambda ids: rid in ids)
        if sw is not None:
            out["swap"] = sw[0]
            rd = self._first("render", sw[0])
            if rd is not None and rd[0] <= raw["t_shown"]:
                out["render"] = rd[0]
        return out

    def gc_in(self, start: float, end: float) -> tuple[float, str]:
        hits = [(s, d, g) for s, d, g in self.gc if s < end and s + d > start]
        return sum(d for _, d, _ in hits), ",".join(f"g{g}:{d * 1000:.1f}" for _, d, g in hits)


def report(title: str, legs: dict[str, Any], tracer: Tracer) -> str:
    lines = [f"== {title}: {len(legs['raw'])} requests"]
    rows = [tracer.timeline(r) for r in legs["raw"]]
    totals = [(r["shown"] - r["commit"]) * 1000 for r in rows]
    present = [s for s in STAGES if any(s in r for r in rows)]
    steps = list(itertools.pairwise(present))
    lines.append(f"{'stage':28} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}  (ms; n)")
    for a, b in steps:
        vals = [(r[b] - r[a]) * 1000 for r in rows if a in r and b in r]
        if vals:
            lines.append(
                f"{a + ' -> ' + b:28} {pct(vals, 50):7.1f} {pct(vals, 95):7.1f} {pct(vals, 99):7.1f} "
                f"{max(vals):7.1f}  ({len(vals)})"
            )
    lines.append(
        f"{'commit -> shown (total)':28} {pct(totals, 50):7.1f} {pct(totals, 95):7.1f} {pct(totals, 99):7.1f} "
        f"{max(totals):7.1f}"
    )
    k2u = [(r["t_done"] - r["t_key"]) * 1000 for r in legs["raw"]]
    lines.append(f"{'key -> unblocked':28} {pct(k2u, 50):7.1f} {pct(k2u, 95):7.1f} {pct(k2u, 99):7.1f} {max(k2u):7.1f}")
    cpu = []  # the console's main thread CPU from the event's arrival to the frame that shows the row
    for r in rows:
        ev = next((c for t, c in tracer.cpu["event"] if t >= r.get("event", float("inf"))), None)
        fr = next((c for t, c in tracer.cpu["frame"] if t >= r["shown"] - 0.0005), None)
        if ev is not None and fr is not None:
            cpu.append((fr - ev) * 1000)
    if cpu:
        lines.append(
            f"{'CPU event -> shown':28} {pct(cpu, 50):7.1f} {pct(cpu, 95):7.1f} {pct(cpu, 99):7.1f} {max(cpu):7.1f}"
            "  (console main thread, ms)"
        )
    gcs = [tracer.gc_in(r["commit"], r["shown"]) for r in rows]
    full = [
        sum(d for s, d, g in tracer.gc if g == 2 and s < r["shown"] and s + d > r["commit"]) * 1000 for r in rows
    ]
    hits = [f for f in full if f > 0]
    lines.append(
        f"full (gen 2) GC pauses inside a commit->shown window: {len(hits)} of {len(rows)} windows"
        + (f", {min(hits):.1f}-{max(hits):.1f} ms" if hits else "")
    )
    if tracer.idle:
        took = [d * 1000 for _, d in tracer.idle]
        hit = sum(1 for r in rows if any(s < r["shown"] and s + d > r["commit"] for s, d in tracer.idle))
        lines.append(
            f"hub idle checks (check + expire_due, once a second): {len(took)}, p50 {pct(took, 50):.1f} ms, "
            f"max {max(took):.1f} ms; overlapping a commit->shown window: {hit}"
        )
    lines.append("slowest 8 (ms per stage):  " + "  ".join(f"{a[:5]}>{b[:5]}" for a, b in steps) + "  gc")
    order = sorted(range(len(rows)), key=lambda i: totals[i], reverse=True)[:8]
    for i in order:
        r = rows[i]
        parts = [f"{(r[b] - r[a]) * 1000:6.1f}" if a in r and b in r else "     -" for a, b in steps]
        lines.append(f"  total {totals[i]:6.1f}: " + " ".join(parts) + f"  {gcs[i][1]}")
        c = r["commit"]
        for end, took, widgets in tracer.frames:
            if c - 0.02 <= end <= r["shown"] + 0.001:
                short = ",".join(w[:12] for w in widgets)
                lines.append(f"      frame at {(end - c) * 1000:+6.1f} ms ({took * 1000:4.1f} ms): {short}")
    return "\n".join(lines)


def main() -> None:
    from . import bench_round_trip as rt

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--served", action="store_true", help="also through hitl serve")
    ap.add_argument("--out", type=Path, help="append the report to this file")
    ap.add_argument("--profile", action="store_true", help="profile each new request's event -> its frame (embedded)")
    args = ap.parse_args()
    out = []
    with tempfile.TemporaryDirectory(prefix="trace-rt-") as tmp:
        work = Path(tmp)
        tracer = Tracer()
        if args.profile:
            from pyinstrument import Profiler

            tracer.profiler = Profiler(interval=0.0002, async_mode="disabled")
        try:
            legs = asyncio.run(rt.embedded(work / "embedded.db", args.n, instrument=tracer.install))
        finally:
            tracer.uninstall()
        out.append(report("embedded store", legs, tracer))
        if tracer.profiler is not None and tracer.profiler.last_session is not None:
            text = tracer.profiler.output_text(unicode=False, color=False, show_all=bool(os.environ.get("TRACE_ALL")))
            out.append("== profile: each new request's event -> the frame that shows it (embedded store)\n" + text)
        print("\n\n".join(out), flush=True)
        if args.served:
            url = sqlite_url(work / "server.db")
            tokens = make_tokens(url, {"bot": "agent", "alice": "reviewer"})
            with Server(url, work) as server:
                tracer = Tracer()
                try:
                    legs = asyncio.run(rt.served(server.url, tokens, args.n, instrument=tracer.install))
                finally:
                    tracer.uninstall()
            out.append(report("through hitl serve", legs, tracer))
            print(out[-1], flush=True)
    if args.out:
        with args.out.open("a") as f:
            f.write("\n\n".join(out) + "\n")


if __name__ == "__main__":
    main()

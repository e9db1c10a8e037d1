#!/usr/bin/env python
"""Regenerate ``screenshots/*.svg``: every console pane on the demo data, deterministically.

    python scripts/screenshots.py [--out screenshots]

The demo story (``hitl_tui.demo.seed_demo``) is written to a throwaway store whose clock ticks a
fixed step per call, then freezes; the console runs on the same frozen clock, so every age and
countdown (and so every SVG) is the same on each run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hitl_tui.backend.local import LocalBackend  # noqa: E402
from hitl_tui.config import Settings  # noqa: E402
from hitl_tui.console import HitlConsole  # noqa: E402
from hitl_tui.store.sqlite import SQLiteStore  # noqa: E402

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
REVIEWER = "alice"

SHOTS = [
    # name, keys pressed after start
    ("approvals", ("j",)),
    ("escalations", ("2",)),
    ("review", ("3",)),
    ("capabilities", ("4",)),
    ("capabilities-suggestion", ("4", "j", "j", "j")),  # deploy: ▲ with its evidence and calibration
    ("help", ("question_mark",)),
]
SIZES = {"": (120, 40), "-80x24": (80, 24)}


class TickingClock:
    """Moves ``step`` forward on every read while seeding, then stands still."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now = start
        self.step = step
        self.ticking = True

    def __call__(self) -> datetime:
        if self.ticking:
            self.now += self.step
        return self.now


async def seed(backend: LocalBackend, clock: TickingClock) -> None:
    try:
        from hitl_tui.demo import seed_demo
    except ImportError:  # the demo is not in this build: use the test data instead
        sys.path.insert(0, str(ROOT / "tests"))
        from tests.console_data import build

        await build(backend, clock)
        return
    await seed_demo(backend, START)


async def shoot(out: Path, db: Path) -> list[Path]:
    clock = TickingClock(START, timedelta(seconds=17))
    backend = LocalBackend(SQLiteStore(db, clock=clock), actor=REVIEWER)
    written = []
    try:
        await seed(backend, clock)
        clock.ticking = False
        for suffix, size in SIZES.items():
            for name, keys in SHOTS:
                app = HitlConsole(backend, Settings(reviewer=REVIEWER), clock=clock)
                async with app.run_test(size=size) as pilot:
                    await app.wait_settled()
                    for key in keys:
                        await pilot.press(key)
                        await app.wait_settled()
                    await pilot.pause(0.1)
                    path = out / f"console-{name}{suffix}.svg"
                    app.save_screenshot(str(path.name), path=str(out))
                    written.append(path)
    finally:
        await backend.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # a relative store path, so the status line reads the same on every machine
        import os

        os.chdir(tmp)
        os.environ["HITL_AUTONOMY_FILE"] = str(Path(tmp) / "dismissed.json")  # never the user's dismissals
        for path in asyncio.run(shoot(args.out.resolve(), Path("demo.db"))):
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

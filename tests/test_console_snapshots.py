"""Snapshots of every pane and the help screen at 80x24 and 120x40, on deterministic data.

The store and the console share one fixed clock, so ages and countdowns never move.
``pytest tests/test_console_snapshots.py --snapshot-update`` rewrites them (check them by eye).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from hitl_tui.backend.local import LocalBackend
from hitl_tui.config import Settings
from hitl_tui.console import HitlConsole
from tests.console_data import REVIEWER, Clock, add_history, build, open_backend

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _dismissals_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dismissed suggestions go to a file of this test's own, never the user's."""
    monkeypatch.setenv("HITL_AUTONOMY_FILE", str(tmp_path / "dismissed.json"))

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalBackend, Clock]]:
    monkeypatch.chdir(tmp_path)  # the status line shows the store path: keep it the same every run
    clock = Clock()
    backend = open_backend(Path("snap.db"), clock)
    asyncio.run(build(backend, clock))
    yield backend, clock
    asyncio.run(backend.close())


@pytest.fixture
def seeded_history(seeded: tuple[LocalBackend, Clock]) -> tuple[LocalBackend, Clock]:
    """Plus weeks of decisions: send_customer_email has a promotion suggestion, deploy a calibration."""
    backend, clock = seeded
    asyncio.run(add_history(backend, clock))
    return seeded


def _app(seeded: tuple[LocalBackend, Clock]) -> HitlConsole:
    backend, clock = seeded
    return HitlConsole(backend, Settings(reviewer=REVIEWER), clock=clock)


def _keys(*keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await app.wait_settled()
        for key in keys:
            await pilot.press(key)
            await app.wait_settled()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("pane", "keys"),
    [
        ("approvals", ("j",)),  # the quorum request: "1 of 2 approvals"
        ("escalations", ("2", "j")),
        ("review", ("3",)),
        ("capabilities", ("4", "j", "j", "j")),
        ("help", ("question_mark",)),
    ],
)
def test_console_snapshot(snap_compare, seeded, pane: str, keys: tuple[str, ...], size: str) -> None:
    assert snap_compare(_app(seeded), terminal_size=SIZES[size], run_before=_keys(*keys))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("suggestion", ("4", "G")),  # send_customer_email: ▲ and its evidence, a and x in the detail
        ("calibration", ("4", "j", "j", "j", "w")),  # deploy over 90 days: bands, counts, the refusal
    ],
)
def test_capability_evidence_snapshot(
    snap_compare, seeded_history, name: str, keys: tuple[str, ...], size: str
) -> None:
    assert snap_compare(_app(seeded_history), terminal_size=SIZES[size], run_before=_keys(*keys))

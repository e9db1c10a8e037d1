"""Shared fixtures: real stores on real files (and real PostgreSQL when configured)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_DSN = os.environ.get("HITL_TEST_POSTGRES_DSN")
# `hitl` subprocesses run in-process, never through a warm daemon they would leave behind
# (tests/test_warm.py starts its own, in a private directory, and stops it)
os.environ["HITL_WARM"] = "0"


class FakeClock:
    """A settable clock for stores (not a mock: the store really compares these times)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 15, 9, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hitl.db"


def _postgres_available() -> str | None:
    if not POSTGRES_DSN:
        return "HITL_TEST_POSTGRES_DSN is not set (PostgreSQL tests need a server)"
    try:
        import hitl_tui.store.postgres  # noqa: F401
    except ModuleNotFoundError:
        return "the PostgreSQL store is not available in this build"
    return None


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        why = _postgres_available()
        if why:
            pytest.skip(why)
    return request.param


@pytest.fixture
async def make_store(store_kind: str, tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Factory for stores of the parametrised kind; every store made is closed afterwards.
    SQLite stores share one file per test; PostgreSQL stores share one fresh schema per test."""
    made: list[object] = []
    schema = None
    if store_kind == "postgres":
        from hitl_tui.store.postgres import create_test_schema, drop_test_schema

        schema = await create_test_schema(POSTGRES_DSN)

    def factory(**kwargs: object) -> object:
        if store_kind == "sqlite":
            from hitl_tui.store.sqlite import SQLiteStore

            s = SQLiteStore(tmp_path / "hitl.db", **kwargs)
        else:
            from hitl_tui.store.postgres import PostgresStore

            s = PostgresStore(POSTGRES_DSN, schema=schema, **kwargs)
        made.append(s)
        return s

    yield factory
    for s in made:
        await s.close()  # type: ignore[attr-defined]
    if schema is not None:
        await drop_test_schema(POSTGRES_DSN, schema)


@pytest.fixture
async def store(make_store, clock):
    return make_store(clock=clock)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the real `hitl` CLI in a subprocess against a temp store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env["HITL_STORE"] = str(tmp_path / "cli.db")
    env["HITL_CONFIG"] = str(tmp_path / "config.toml")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env["HITL_WARM"] = "0"
    return env


HITL = [sys.executable, "-m", "hitl_tui"]


@pytest.fixture(autouse=True)
def _child_watchers_of_earlier_tests_are_gone() -> None:
    """Each asyncio child-watcher thread ends right after its child is reaped; under xdist the next test
    can start in that instant. Let them end first, so a test that compares threads sees its own."""
    for t in threading.enumerate():
        if t.name.startswith("asyncio-waitpid-"):
            t.join(timeout=2)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``, see pyproject.toml) the tests of a module that share a
    module-scoped fixture (one server, one benchmark run) stay on one worker: the fixture is set up
    once, and the tests see one another's effects in file order, as they do without xdist."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        if any(fd.scope in ("module", "package", "class") for fds in info.name2fixturedefs.values() for fd in fds):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))

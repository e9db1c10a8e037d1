"""Shared pieces of the benchmarks: results, statistics, processes, stores and servers.

Every benchmark module exposes ``NAME``, ``TITLE`` and ``run(quick: bool) -> list[Result]``; ``run.py``
runs each in its own process (so memory figures and imported modules do not leak between them).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_DSN = os.environ.get("HITL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """One benchmark (or one variant of it): our figures, the baseline's, and the verdict."""

    name: str
    figures: dict[str, float | int | str]
    baseline: dict[str, float | int | str]
    ratio: float | None  # ours / baseline (see ratio_of)
    ratio_of: str
    target: str
    passed: bool
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_result(
    name: str,
    figures: dict[str, Any],
    baseline: dict[str, Any],
    *,
    ratio: float | None,
    ratio_of: str,
    target: str,
    checks: dict[str, bool],
    notes: Iterable[str] = (),
) -> Result:
    return Result(
        name=name,
        figures={k: _round(v) for k, v in figures.items()},
        baseline={k: _round(v) for k, v in baseline.items()},
        ratio=None if ratio is None or not math.isfinite(ratio) else round(ratio, 4),
        ratio_of=ratio_of,
        target=target,
        passed=all(checks.values()) if checks else False,
        checks=checks,
        notes=list(notes),
    )


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 4) if abs(v) < 1000 else round(v, 1)
    return v


# --------------------------------------------------------------------------- statistics


def pct(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def summary_ms(values: Sequence[float], prefix: str) -> dict[str, float]:
    """p50 / p95 / p99 / max in milliseconds of durations given in seconds."""
    return {
        f"{prefix}_p50_ms": ms(pct(values, 50)),
        f"{prefix}_p95_ms": ms(pct(values, 95)),
        f"{prefix}_p99_ms": ms(pct(values, 99)),
        f"{prefix}_max_ms": ms(max(values)) if values else float("nan"),
        f"{prefix}_n": len(values),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------- processes


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for child processes: no HITL_* from the caller, this tree on the path, no warm daemon."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    out["NO_COLOR"] = "1"
    out["HITL_WARM"] = "0"  # in-process, and no warm daemon left behind (bench_startup times the warm path itself)
    out.update(extra or {})
    return out


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    """Resident memory (``VmRSS``) or its peak (``VmHWM``) of a process, from /proc, in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import platform

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    versions: dict[str, str] = {}
    from importlib import metadata

    for dist in ("textual", "pydantic", "fastapi", "uvicorn", "uvloop", "httptools", "httpx", "psycopg"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "-"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "versions": versions,
    }


# --------------------------------------------------------------------------- stores and servers


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_tokens(store_url: str, roles: dict[str, str]) -> dict[str, str]:
    """Create one API token per ``name -> role`` straight in the store (as ``hitl token create``
    does) and return ``name -> secret``."""
    from hitl_tui.cli.serve import open_store_at
    from hitl_tui.models import TokenRole
    from hitl_tui.server.credentials import hash_token, new_token

    secrets = {name: new_token() for name in roles}

    async def make() -> None:
        store = open_store_at(store_url)
        try:
            for name, role in roles.items():
                await store.create_token(name, TokenRole(role), hash_token(secrets[name]), "bench")
        finally:
            await store.close()

    asyncio.run(make())
    return secrets


def postgres_available(dsn: str = PG_DSN) -> str | None:
    """None when PostgreSQL answers at ``dsn``, else why not."""
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def fresh_pg_schema(dsn: str = PG_DSN) -> tuple[str, str]:
    """A fresh, empty schema on the server: ``(store_url, schema)``; drop it with :func:`drop_pg_schema`."""
    import uuid

    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}schema={schema}", schema


def drop_pg_schema(schema: str, dsn: str = PG_DSN) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Server:
    """A real ``hitl serve`` process (uvloop + httptools, as the command configures it)."""

    def __init__(self, store_url: str, workdir: Path, *, args: Sequence[str] = ()) -> None:
        self.store_url = store_url
        self.port = free_port()
        self.workdir = workdir
        self.args = list(args)
        self.log_path = workdir / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        import httpx

        log = self.log_path.open("ab")
        cmd = [sys.executable, "-m", "hitl_tui", "serve", "--store", self.store_url, "--port", str(self.port),
               "--log-level", "warning", *self.args]
        self.proc = subprocess.Popen(cmd, env=env({"HITL_CONFIG": str(self.workdir / "none.toml")}),
                                     stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hitl serve exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"hitl serve did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def rss_kib(self, key: str = "VmRSS") -> int:
        return rss_kib(self.proc.pid, key) if self.proc else 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def timed_runs(cmd: Sequence[str], runs: int, *, stdin: bytes | None = None, extra_env: dict[str, str] | None = None,
               cwd: Path | None = None) -> list[float]:
    """Wall time of ``runs`` runs of a command (each must exit 0)."""
    out = []
    e = env(extra_env)
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.run(cmd, input=stdin, env=e, cwd=cwd, capture_output=True)
        out.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return out

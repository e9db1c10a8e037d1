"""Real `hitl serve` processes for tests: started on a free loopback port against a real store,
ready once /healthz answers; stopped, SIGKILLed and restarted on the same port and store."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler], **attrs: object) -> Iterator[str]:
    """A plain HTTP server on loopback answering with ``handler`` (given ``attrs`` as class
    attributes), in a thread, for scripted servers that misbehave; yields its URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (handler,), dict(attrs)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env["HITL_CONFIG"] = str(tmp / "no-config.toml")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env["HITL_WARM"] = "0"  # in-process, and no warm daemon left behind
    return env


class ServerProcess:
    """One `hitl serve` subprocess. ``start()`` blocks until /healthz answers 200."""

    def __init__(self, store_url: str, tmp: Path, *, port: int | None = None, extra: list[str] | None = None) -> None:
        self.store_url = store_url
        self.tmp = tmp
        self.port = port or free_port()
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / f"serve-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = self.log_path.open("ab")
        cmd = [sys.executable, "-m", "hitl_tui", "serve", "--store", self.store_url, "--port", str(self.port),
               "--log-level", "warning", *self.extra]
        self.proc = subprocess.Popen(cmd, env=server_env(self.tmp), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hitl serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"hitl serve did not become healthy in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, timeout: float = 30.0) -> ServerProcess:
        self.kill()
        return self.start(timeout)

    def rss_kib(self) -> int:
        """Resident memory of the server process (Linux /proc)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def _run_coro(coro_factory):  # runs a coroutine to completion, even from inside a running loop
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(lambda: asyncio.run(coro_factory())).result()


def create_token(store_url: str, name: str, role: str) -> str:
    """Make a token straight in the store (as `hitl token create` does) and return the secret."""
    from hitl_tui.cli.serve import open_store_at
    from hitl_tui.models import TokenRole
    from hitl_tui.server.credentials import hash_token, new_token

    secret = new_token()

    async def make() -> None:
        store = open_store_at(store_url)
        try:
            await store.create_token(name, TokenRole(role), hash_token(secret), "test")
        finally:
            await store.close()

    _run_coro(make)
    return secret


def revoke_token(store_url: str, name: str) -> None:
    from hitl_tui.cli.serve import open_store_at

    async def revoke() -> None:
        store = open_store_at(store_url)
        try:
            await store.revoke_token(name, "test")
        finally:
            await store.close()

    _run_coro(revoke)


class Team:
    """A running server with one token per role: ``bot`` (agent), ``alice`` and ``bob``
    (reviewers), ``root`` (admin)."""

    def __init__(self, server: ServerProcess, tokens: dict[str, str] | None = None) -> None:
        """``tokens``: reuse another team's (replicas sharing one store)."""
        self.server = server
        self.tokens = tokens if tokens is not None else {
            "bot": create_token(server.store_url, "bot", "agent"),
            "alice": create_token(server.store_url, "alice", "reviewer"),
            "bob": create_token(server.store_url, "bob", "reviewer"),
            "root": create_token(server.store_url, "root", "admin"),
        }

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    def client(self, who: str | None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(who), timeout=30.0)

    def backend(self, who: str, **kwargs: object):
        from hitl_tui.backend.http import HttpBackend

        return HttpBackend(self.url, self.tokens[who], **kwargs)  # type: ignore[arg-type]


def sqlite_url(tmp: Path, name: str = "server.db") -> str:
    return f"sqlite:///{tmp / name}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh `hitl serve` on a fresh SQLite file, for one test."""
    proc = ServerProcess(sqlite_url(tmp_path), tmp_path).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def team(server: ServerProcess) -> Team:
    return Team(server)


@pytest.fixture(scope="module")
def module_team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """One server for a whole module (for many quick, independent checks)."""
    tmp = tmp_path_factory.mktemp("server")
    proc = ServerProcess(sqlite_url(tmp), tmp).start()
    try:
        yield Team(proc)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def module_pg_team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """One server on a fresh PostgreSQL schema for a whole module (skips without PostgreSQL)."""
    from .conftest import POSTGRES_DSN, _postgres_available

    why = _postgres_available()
    if why:
        pytest.skip(why)
    from hitl_tui.store.postgres import create_test_schema, drop_test_schema

    assert POSTGRES_DSN
    schema: str = _run_coro(lambda: create_test_schema(POSTGRES_DSN))
    tmp = tmp_path_factory.mktemp("pgserver")
    sep = "&" if "?" in POSTGRES_DSN else "?"
    proc = ServerProcess(f"{POSTGRES_DSN}{sep}schema={schema}", tmp)
    try:
        proc.start()
        yield Team(proc)
    finally:
        proc.stop()
        _run_coro(lambda: drop_test_schema(POSTGRES_DSN, schema))

"""`hitl serve` logs no pydantic warning on start (a deferred body model built outside FastAPI's guard)."""

from __future__ import annotations

from pathlib import Path

import httpx

from .server_utils import ServerProcess, Team, sqlite_url


def test_no_pydantic_warning_when_serving(tmp_path: Path) -> None:
    server = ServerProcess(sqlite_url(tmp_path), tmp_path).start()
    try:
        team = Team(server)
        assert httpx.get(f"{server.url}/openapi.json", timeout=10).status_code == 200
        with team.client("bot") as bot:
            assert bot.post("/v1/requests", json={"agent": "bot", "tool": "Deploy"}).status_code == 200
            assert bot.post("/v1/escalations", json={"agent": "bot", "message": "help"}).status_code == 200
    finally:
        server.stop()
    log = server.log()
    assert "Warning" not in log and "warnings.warn" not in log, log

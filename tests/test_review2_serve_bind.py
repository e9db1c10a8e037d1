"""`hitl serve` on a port in use, or a host it cannot resolve: one clear line and a non-zero exit,
before anything is announced (uvicorn logged "Application startup complete" first)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from .server_utils import free_port, server_env, sqlite_url


def _serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "hitl_tui", "serve", "--store", sqlite_url(tmp_path), *flags]
    return subprocess.run(cmd, env=server_env(tmp_path), capture_output=True, text=True, timeout=60)


def test_port_in_use_is_one_clear_line_and_fails(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        out = _serve(tmp_path, "--port", str(port))
    assert out.returncode == 3, out
    assert "startup complete" not in out.stderr and "http://127.0.0.1" not in out.stderr, out.stderr
    assert out.stderr.strip() == (
        f"hitl serve: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another server? choose a port with --port)"
    )


def test_unknown_host_is_one_clear_line(tmp_path: Path) -> None:
    out = _serve(tmp_path, "--port", str(free_port()), "--host", "no-such-host.invalid")
    assert out.returncode == 3
    assert out.stderr.startswith("hitl serve: cannot listen on no-such-host.invalid:") and "resolve" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1

"""Load generators for the HTTP benchmarks, each in its own process.

``wrk`` (Debian package ``wrk``) is used when installed: C, keep-alive connections, a Lua script for
the POST body. Otherwise a small asyncio HTTP/1.1 client (raw sockets, keep-alive, one process)
stands in. Both report acknowledged (2xx) requests per second and latency percentiles.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
done = function(summary, latency, requests)
  io.write(string.format(
    "JSON {{\\"requests\\": %d, \\"non2xx\\": %d, \\"errors\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d}}\\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str, body: str, token: str | None, connections: int, seconds: float, threads: int = 1
) -> dict[str, Any]:
    auth = f'wrk.headers["Authorization"] = {_lua_string("Bearer " + token)}' if token else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT.format(body=_lua_string(body), auth=auth))
        script = f.name
    try:
        proc = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
             "-s", script, url],
            capture_output=True, text=True, timeout=seconds + 60,
        )
    finally:
        Path(script).unlink(missing_ok=True)
    m = re.search(r"^JSON (\{.*\})$", proc.stdout, re.M)
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    stats = json.loads(m.group(1))
    secs = re.search(r"requests in ([\d.]+)(m?s)", proc.stdout)
    duration = float(secs.group(1)) / (1000 if secs.group(2) == "ms" else 1) if secs else seconds
    ok = stats["requests"] - stats["non2xx"]
    return {"tool": "wrk", "requests": stats["requests"], "ok": ok, "non2xx": stats["non2xx"],
            "errors": stats["errors"], "seconds": duration, "rate": ok / duration,
            "p50_ms": stats["p50_us"] / 1000, "p99_ms": stats["p99_us"] / 1000}


# --------------------------------------------------------------------------- asyncio fallback


async def _client(host: str, port: int, raw: bytes, until: float, lat: list[float], codes: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            t = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if m:
                await reader.readexactly(int(m.group(1)))
            lat.append(time.perf_counter() - t)
            codes[status] = codes.get(status, 0) + 1
    finally:
        writer.close()


async def _pyload(url: str, body: str, token: str | None, connections: int, seconds: float) -> dict[str, Any]:
    m = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert m, url
    host, port, path = m.group(1), int(m.group(2)), m.group(3)
    data = body.encode()
    headers = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
               f"Content-Length: {len(data)}"]
    if token:
        headers.append(f"Authorization: Bearer {token}")
    raw = ("\r\n".join(headers) + "\r\n\r\n").encode() + data
    lat: list[float] = []
    codes: dict[int, int] = {}
    start = time.perf_counter()
    await asyncio.gather(*(_client(host, port, raw, start + seconds, lat, codes) for _ in range(connections)))
    took = time.perf_counter() - start
    ok = sum(n for c, n in codes.items() if 200 <= c < 300)
    lat.sort()
    return {"tool": "asyncio", "requests": len(lat), "ok": ok, "non2xx": len(lat) - ok, "errors": 0,
            "seconds": took, "rate": ok / took, "p50_ms": lat[len(lat) // 2] * 1000 if lat else 0.0,
            "p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else 0.0}


def run_python(url: str, body: str, token: str | None, connections: int, seconds: float) -> dict[str, Any]:
    """The asyncio client, in a separate process."""
    args = json.dumps({"url": url, "body": body, "token": token, "connections": connections, "seconds": seconds})
    proc = subprocess.run([sys.executable, "-m", "benchmarks.loadgen", args], capture_output=True, text=True,
                          timeout=seconds + 60, cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr}")
    return json.loads(proc.stdout)


def load(url: str, body: str, token: str | None, connections: int, seconds: float) -> dict[str, Any]:
    if wrk_available():
        return run_wrk(url, body, token, connections, seconds)
    return run_python(url, body, token, connections, seconds)


if __name__ == "__main__":
    a = json.loads(sys.argv[1])
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_pyload(a["url"], a["body"], a["token"], a["connections"], a["seconds"]))))

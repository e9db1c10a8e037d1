"""The throughput baseline: a no-op FastAPI endpoint with the same body validation as
``POST /v1/requests`` (the ``RequestCreate`` model), served with the same uvicorn settings as
``hitl serve`` (uvloop, httptools, no access log). It validates and answers; it stores nothing.

    python -m benchmarks.noop_app PORT
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from hitl_tui.models import RequestCreate

app = FastAPI()
_count = 0


@app.post("/v1/requests")
async def create(body: RequestCreate) -> dict[str, object]:
    global _count
    _count += 1
    return {"id": _count, "agent": body.agent, "tool": body.tool, "status": "pending"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools", access_log=False,
                log_level="warning", timeout_keep_alive=20, backlog=4096)

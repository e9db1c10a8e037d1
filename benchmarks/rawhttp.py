"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for thousands of simulated agents in one
process (an httpx client per agent would cost more CPU than the server under test)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

_CL = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


class Conn:
    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Conn:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def request(self, method: str, path: str, body: Any = None, *, parse: bool = True) -> tuple[int, Any]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(data)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        if self.token:
            head.append(f"Authorization: Bearer {self.token}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw.split(b" ", 2)[1])
        m = _CL.search(raw)
        payload = await self.reader.readexactly(int(m.group(1))) if m else b""
        if not parse:
            return status, payload.decode()
        return status, (json.loads(payload) if payload else None)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

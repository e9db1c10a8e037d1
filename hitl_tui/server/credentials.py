"""Token secrets: made, hashed and named here (no web imports, so the CLI can use it cheaply).

A token is ``hitl_`` + 32 random bytes (URL-safe base64), shown once when created. The store keeps
only its SHA-256 (hex): a presented token is hashed and looked up by that hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from ..errors import InvalidInput

TOKEN_PREFIX = "hitl_"
MAX_TOKEN_LENGTH = 200
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")


def new_token() -> str:
    """A fresh secret: shown to its owner once, never stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token_name(name: str) -> str:
    """Token names become the identity recorded on decisions: keep them plain."""
    if not TOKEN_NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid token name {name!r}: use 1-100 letters, digits and . _ @ + - (starting with a letter or digit)",
            name=name,
        )
    return name

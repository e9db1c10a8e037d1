"""Hide secrets before arguments leave the store: in notifications, digests and summaries.

Values are redacted when their key looks like a secret (``token``, ``password``, ``api_key``,
``Authorization``, ``private_key``, ``client_secret``, ``session_cookie``, ... in any case and
spelling: ``apiKey``, ``X-Api-Key``, ``AWS_SECRET_ACCESS_KEY``), at any depth of nested objects
and lists. Strings are also scrubbed of a few unmistakable secret shapes: ``Bearer <token>``,
PEM private keys and ``user:password@`` in URLs.

The store itself keeps the real arguments: the tool must run with them, and a reviewer who can
read the store can read them anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"
_MAX_DEPTH = 64

#: substrings of a key (lower-cased, separators removed) that mark it as secret
SECRET_KEY_PARTS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "accesskey",
    "signingkey",
    "encryptionkey",
    "credential",
    "authorization",
    "cookie",
    "sessionid",
    "jwt",
)

#: whole words of a key that mark it as secret (``auth`` but not ``author``)
SECRET_KEY_WORDS: frozenset[str] = frozenset({"auth", "pwd", "pass", "bearer", "otp", "ssn"})

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SEPARATORS = re.compile(r"[^a-z0-9]")

_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    (
        re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL),
        REDACTED,
    ),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@"), r"\1:" + REDACTED + "@"),
    (
        re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&;,]+)"),
        r"\1\2" + REDACTED,
    ),
)


def is_secret_key(key: object) -> bool:
    """True when ``key`` names something that should not be shown (case-insensitive)."""
    if not isinstance(key, str) or not key:
        return False
    compact = _SEPARATORS.sub("", key.lower())
    if any(part in compact for part in SECRET_KEY_PARTS):
        return True
    words = {w.lower() for w in _WORDS.findall(key)}
    return not words.isdisjoint(SECRET_KEY_WORDS)


def scrub_text(text: str) -> str:
    """Replace unmistakable secrets inside free text (bearer tokens, private keys, URL passwords)."""
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any, *, extra_keys: Iterable[str] = ()) -> Any:
    """A copy of ``value`` with secret-looking keys' values replaced by ``[redacted]``.

    ``extra_keys`` adds exact key names (case-insensitive) to redact as well.
    """
    extra = frozenset(k.lower() for k in extra_keys)
    return _redact(value, extra, 0)


def _redact(value: Any, extra: frozenset[str], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return "[too deep]"
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if is_secret_key(k) or (isinstance(k, str) and k.lower() in extra):
                out[k] = REDACTED if v not in (None, "") else v
            else:
                out[k] = _redact(v, extra, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_redact(v, extra, depth + 1) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value

"""Dismissed suggestions, remembered for a period in a small JSON file.

Why a file: the store has no place for "this reviewer does not want to see this suggestion until
Tuesday" (capabilities reject unknown fields, and the event log only takes the store's own kinds),
and a dismissal is a display preference, not policy: losing it shows a suggestion again, which is
the safe direction. The file lives in the platformdirs user data dir (``HITL_AUTONOMY_FILE``
points elsewhere) and is keyed by the backend's address (``backend.describe()``: the store path or
the server URL), so one machine's consoles and CLI share it per store. Writes are atomic
(temporary file, then rename) under an advisory lock, so a console and a CLI can write at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ..config import APP_NAME
from ..errors import InvalidInput
from .suggestions import Suggestion

__all__ = ["Dismissal", "Dismissals", "default_dismissals_path"]

log = logging.getLogger(__name__)

ENV_PATH = "HITL_AUTONOMY_FILE"
MAX_DAYS = 3650


class Dismissal(BaseModel):
    key: str
    tool: str
    agent: str | None = None
    kind: str
    until: datetime
    at: datetime
    by: str | None = None
    evidence: str = ""


def default_dismissals_path() -> Path:
    env = os.environ.get(ENV_PATH)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME)) / "dismissed-suggestions.json"


class Dismissals:
    """The dismissals of one store (``scope``), in the shared file at ``path``."""

    def __init__(self, scope: str, path: Path | None = None) -> None:
        self.scope = scope
        self.path = path or default_dismissals_path()

    # ----------------------------------------------------------------- file plumbing
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+b") as fh:
            try:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            except ImportError:  # not POSIX: the atomic rename still keeps the file whole
                pass
            yield

    def _read_all(self) -> dict[str, dict[str, dict[str, object]]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable dismissals file %s: %s", self.path, exc)
            return {}
        stores = data.get("stores") if isinstance(data, dict) else None
        return stores if isinstance(stores, dict) else {}

    def _write_all(self, stores: dict[str, dict[str, dict[str, object]]]) -> None:
        text = json.dumps({"version": 1, "stores": stores}, indent=2, ensure_ascii=False, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".dismissed-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _parse(self, raw: dict[str, object]) -> dict[str, Dismissal]:
        out = {}
        for key, value in raw.items():
            try:
                out[key] = Dismissal.model_validate(value)
            except ValidationError:
                continue
        return out

    # ----------------------------------------------------------------- API
    def active(self, now: datetime | None = None) -> dict[str, Dismissal]:
        """Dismissals of this store still in force, by suggestion key."""
        now = now or datetime.now(UTC)
        raw = self._read_all().get(self.scope, {})
        return {k: d for k, d in self._parse(raw if isinstance(raw, dict) else {}).items() if d.until > now}

    def dismissed(self, suggestion: Suggestion, now: datetime | None = None) -> Dismissal | None:
        return self.active(now).get(suggestion.key)

    def dismiss(
        self, suggestion: Suggestion, *, days: float = 7, by: str | None = None, now: datetime | None = None
    ) -> Dismissal:
        """Hide ``suggestion`` (this capability and this change) for ``days``."""
        if not 0 < days <= MAX_DAYS:
            raise InvalidInput(f"--days must be more than 0 and at most {MAX_DAYS}")
        now = now or datetime.now(UTC)
        entry = Dismissal(
            key=suggestion.key,
            tool=suggestion.tool,
            agent=suggestion.agent,
            kind=suggestion.kind,
            until=now + timedelta(days=days),
            at=now,
            by=by,
            evidence=suggestion.evidence,
        )
        with self._locked():
            stores = self._read_all()
            raw = stores.get(self.scope)
            mine = self._parse(raw if isinstance(raw, dict) else {})
            mine = {k: d for k, d in mine.items() if d.until > now}  # expired ones are dropped
            mine[entry.key] = entry
            stores[self.scope] = {k: d.model_dump(mode="json") for k, d in mine.items()}
            self._write_all(stores)
        return entry

    def undo(self, key: str) -> bool:
        """Show a dismissed suggestion again. True when there was a dismissal to remove."""
        with self._locked():
            stores = self._read_all()
            raw = stores.get(self.scope)
            if not isinstance(raw, dict) or key not in raw:
                return False
            del raw[key]
            self._write_all(stores)
        return True

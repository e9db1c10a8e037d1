"""Configuration: a TOML file, overridden by ``HITL_*`` environment variables, overridden by flags.

The file lives in the platformdirs config dir (``hitl config path`` prints it; ``HITL_CONFIG``
points elsewhere). Validation errors name the key and the file.

(No ``from __future__ import annotations``: string annotations would be evaluated one by one each
time the settings models are defined, on every command's start-up.)
"""

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .models import PolicySettings

APP_NAME = "hitl-tui"

DEFAULT_TRIGGERS = [
    "I'm not sure how to proceed",
    "This could have unintended consequences",
    "I need access to",
    "I don't have enough context",
]

#: environment variable -> dotted config key
ENV_KEYS = {
    "HITL_STORE": "store",
    "HITL_SERVER": "server",
    "HITL_TOKEN": "token",
    "HITL_REVIEWER": "reviewer",
    "HITL_WEBHOOK_URL": "notify.webhook_url",
}


class ConfigError(Exception):
    """A one-line, user-facing configuration problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use: faster start-up


class NotifySettings(_Section):
    webhook_url: str | None = None
    webhook_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    smtp_host: str | None = None
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    smtp_from: str | None = None
    smtp_to: list[str] = Field(default_factory=list)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False


class EscalationSettings(_Section):
    triggers: list[str] = Field(default_factory=lambda: list(DEFAULT_TRIGGERS))
    timeout_s: Annotated[float, Field(gt=0)] = 7200.0


class ReviewSettings(_Section):
    result_limit: Annotated[int, Field(ge=0)] = 500


class ConsoleSettings(_Section):
    bell: bool = True  # ring the terminal bell for new high-risk requests
    notify_risks: list[str] = Field(default_factory=lambda: ["high", "critical"])
    theme: str | None = None


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8750
    max_body_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    prevent_self_review: bool = True


class AutonomySettings(_Section):
    """Evidence-driven promotion and demotion (see ``hitl stages suggest``)."""

    window_days: Annotated[int, Field(ge=1, le=3650)] = 30
    min_approvals: Annotated[int, Field(ge=1)] = 50
    demote_on_flag: Literal["suggest", "act", "off"] = "act"
    calibration_target: Annotated[float, Field(gt=0, lt=1)] = 0.01  # max denial rate of autonomous actions
    calibration_min_sample: Annotated[int, Field(ge=1)] = 30


def check_server_url(url: str | None) -> str | None:
    """``http(s)://host[:port][/path]``, or a one-line reason why not (no credentials echoed)."""
    if url is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not parts.hostname or any(c.isspace() for c in url):
        raise ValueError("needs a host name, without spaces: http(s)://host[:port]")
    if port == 0:
        raise ValueError("port 0 is not a port a server listens on")
    return url


class Settings(_Section):
    store: str | None = None  # path or URL of the embedded store
    server: str | None = None  # URL of a shared `hitl serve`
    token: str | None = None
    reviewer: str | None = None  # who decides from this machine (default: the OS user)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    serve: ServerSettings = Field(default_factory=ServerSettings)
    autonomy: AutonomySettings = Field(default_factory=AutonomySettings)

    _server = field_validator("server")(check_server_url)


def config_path() -> Path:
    env = os.environ.get("HITL_CONFIG")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME)) / "config.toml"


def default_store_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME)) / "hitl.db"


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        data = data.setdefault(p, {})
    data[parts[-1]] = value


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {key}: {msg}{more}"


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """File, then environment, then ``overrides`` (flags; ``None`` values are ignored)."""
    if path is not None and not path.exists():  # named on purpose (--config): a typo must not mean defaults
        raise ConfigError(f"{path}: no such config file")
    path = path or config_path()  # HITL_CONFIG naming no file means none, as the default location
    data: dict[str, Any] = {}
    if path.exists():
        import tomllib  # only with a file to read (start-up time)

        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: not UTF-8 text (byte {exc.start})") from None
        except RecursionError:
            raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            Settings.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, str(path))) from None
    for env, key in ENV_KEYS.items():
        value = os.environ.get(env)
        if value:
            _set_dotted(data, key, value)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "settings (file, HITL_* environment or flags)")) from None

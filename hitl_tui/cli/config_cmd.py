"""``hitl config path`` / ``hitl config show``."""

from __future__ import annotations

import argparse
from typing import Any

from .output import emit_json


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="where the config file is, and the settings in force")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    csub.add_parser("path", help="print the config file's path").set_defaults(func=cmd_path)
    csub.add_parser("show", help="print the settings in force (file + environment + flags) as JSON").set_defaults(
        func=cmd_show
    )


def cmd_path(args: argparse.Namespace, ctx: Any) -> int:
    from ..config import config_path

    print(args.config or config_path())
    return 0


def cmd_show(args: argparse.Namespace, ctx: Any) -> int:
    data = ctx.settings.model_dump(mode="json")
    if data.get("token"):
        data["token"] = "***"
    if data["notify"].get("smtp_password"):
        data["notify"]["smtp_password"] = "***"
    emit_json(data)
    return 0

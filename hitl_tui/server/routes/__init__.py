"""One router per resource under ``/v1``.

The models of ``hitl_tui.models`` build their validators on first use (``defer_build``, for the
CLI's start-up). A type adapter inherits that setting from its model, so the adapter FastAPI makes for
a route's body stayed a placeholder, built later (with the OpenAPI schema) outside FastAPI's guard,
and pydantic warned about the ``alias='body'`` FastAPI attaches to it
(``UnsupportedFieldAttributeWarning``, once per body model, on every server start). The server needs
them all anyway: build them now and stop deferring, before any route module declares its routes.
"""

from __future__ import annotations

from pydantic import BaseModel

from ... import models


def _build_models() -> None:
    for value in vars(models).values():
        if (
            isinstance(value, type)
            and issubclass(value, BaseModel)
            and value.__module__ == models.__name__
        ):
            if not value.__pydantic_complete__:
                value.model_rebuild(force=True)
            value.model_config["defer_build"] = False


_build_models()

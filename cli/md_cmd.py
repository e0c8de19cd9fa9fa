"""Market data commands (md import, md last, md bars, md rejects)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    del app

"""What every command shares: the options of the contract's conventions, the composition of the
real store and clock, and output helpers."""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer

from oms.book import Ctx
from oms.errors import BadInput
from oms.store import Store, resolve_url
from oms.values import parse_decimal, parse_utc

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (else TIEOUT_DB, else sqlite:///tieout.db).", show_default=False
    ),
]
ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who makes the change (else TIEOUT_ACTOR, else the OS user).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def open_store(db: str | None, *, check_schema: bool = True) -> Store:
    return Store.open(resolve_url(db), check_schema=check_schema)


def clock() -> datetime:
    """Now, in UTC. TIEOUT_NOW (an ISO 8601 time with a zone) pins it: for tests, drills and
    replaying a day; every change still records that time in the audit trail."""
    pinned = os.environ.get("TIEOUT_NOW")
    if pinned:
        return parse_utc(pinned, "TIEOUT_NOW")
    return datetime.now(UTC)


def resolve_actor(actor: str | None) -> str:
    name = actor or os.environ.get("TIEOUT_ACTOR") or getpass.getuser()
    if not name.strip():
        raise BadInput("--actor", "the actor name is empty")
    return name.strip()


def make_ctx(actor: str | None) -> Ctx:
    return Ctx(actor=resolve_actor(actor), now=clock())


def decimal_arg(text: str, name: str, **kw: bool) -> Decimal:
    return parse_decimal(text, name, **kw)


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def say(text: str, *, json_mode: bool = False) -> None:
    """Human output: stdout normally, stderr when stdout carries JSON."""
    (sys.stderr if json_mode else sys.stdout).write(text + "\n")

"""Audit trail commands: verify the hash chain, export it."""

from __future__ import annotations

import json as jsonlib
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from cli.common import DbOpt, JsonOpt, emit_json, open_store, say
from oms import audit, order_book
from oms.errors import BadInput, VerificationFailed
from oms.values import day_start, parse_date

audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


def _file_rows(path: str) -> list[tuple[object, ...]]:
    p = Path(path)
    if not p.is_file():
        raise BadInput(path, "no such file")
    rows: list[tuple[object, ...]] = []
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                e = jsonlib.loads(line)
                payload = audit.canonical_json(e["payload"])
                rows.append(
                    (
                        e["seq"],
                        e["at"],
                        e["actor"],
                        e["action"],
                        e["entity_type"],
                        e["entity_id"],
                        e["reason"],
                        payload,
                        e["prev_hash"],
                        e["hash"],
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise BadInput(path, f"line {n} is not an audit event: {exc}") from None
    return rows


@audit_app.command("verify")
def verify(
    file: Annotated[str | None, typer.Option(help="verify an exported JSONL file instead")] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Recompute the audit hash chain; exit 7 and name the first bad event if it is broken.
    On a book, also check the sums kept from the record (cash and position running sums, order
    totals) against it: exit 7 where one differs (changed behind tieout's back)."""
    drift: list[str] = []
    if file:
        rows = _file_rows(file)
        anchor = None
        if rows and rows[0][0] != 1:
            anchor = (int(str(rows[0][0])) - 1, str(rows[0][8]))  # an export of a later range
        check = audit.check_chain(rows, anchor=anchor)  # type: ignore[arg-type]
    else:
        store = open_store(db)
        check = audit.verify_url(store.engine.url.render_as_string(hide_password=False))
        with store.read() as conn:  # the sums kept from the record, checked against it
            drift = order_book.kept_sums_drift(conn) + order_book.totals_drift(conn)
    if json:
        emit_json({**check.as_json(), **({} if file else {"derived_drift": drift})})
    elif check.ok:
        say(f"audit trail intact: {check.events} events, head {check.head}")
    if not check.ok:
        raise VerificationFailed(
            f"audit trail broken at event {check.first_bad_seq}: {check.problem}"
        )
    if drift:
        raise VerificationFailed(
            f"sums kept from the record differ from it ({len(drift)}): {drift[0]}"
            + ("" if len(drift) == 1 else f"; ... (--json lists all {len(drift)})")
        )


@audit_app.command("export")
def export(
    from_: Annotated[str, typer.Option("--from", help="first date (YYYY-MM-DD), UTC")],
    to: Annotated[str, typer.Option("--to", help="last date (YYYY-MM-DD), UTC")],
    out: Annotated[str, typer.Option(help="JSONL file to write")],
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Export audit events of a date range as JSON lines (verifiable with `audit verify --file`):
    every event from the range's first to its last, by sequence."""
    since = day_start(parse_date(from_, "--from"))
    until = day_start(parse_date(to, "--to") + timedelta(days=1))
    count = 0
    with open_store(db).read() as conn, Path(out).open("w", encoding="utf-8") as fh:
        for ev in audit.events_of_days(conn, since, until):
            fh.write(jsonlib.dumps(ev.as_json(), ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    if json:
        emit_json({"file": out, "events": count})
    else:
        say(f"{out}: {count} audit events")

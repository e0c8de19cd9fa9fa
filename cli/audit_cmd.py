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


_TEXT_FIELDS = ("at", "actor", "action", "entity_type", "entity_id", "prev_hash", "hash")


def _file_rows(path: str) -> tuple[list[tuple[object, ...]], tuple[int, str] | None]:
    """The export's events, up to its first line that is no audit event (a cut or edited
    file: the verification fails there), and that line's number and what is wrong with it."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(path, "no such file")
    rows: list[tuple[object, ...]] = []
    with p.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                e = jsonlib.loads(line)
                seq = e["seq"]
                if type(seq) is not int:  # not a bool, a float or text
                    raise TypeError(f"seq {seq!r} is not a whole number")
                for name in _TEXT_FIELDS:
                    if not isinstance(e[name], str):
                        raise TypeError(f"{name} {e[name]!r} is not text")
                if e["reason"] is not None and not isinstance(e["reason"], str):
                    raise TypeError(f"reason {e['reason']!r} is not text")
                payload = audit.canonical_json(e["payload"])
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return rows, (n, f"line {n} is not an audit event: {exc}")
            rows.append(
                (
                    seq,
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
    return rows, None


def _verify_file(file: str) -> tuple[audit.ChainCheck, dict[str, int | None]]:
    """An export checked against itself: its chain from its first event's prev_hash (an
    export of a later range starts after seq 1), and its first and last seq, which the reader
    compares with the book's (a file cut at either end is still a chain)."""
    rows, bad = _file_rows(file)
    anchor = None
    if rows and rows[0][0] != 1:
        anchor = (int(str(rows[0][0])) - 1, str(rows[0][8]))  # an export of a later range
    check = audit.check_chain(rows, anchor=anchor)  # type: ignore[arg-type]
    if check.ok and bad is not None:
        after = int(str(rows[-1][0])) + 1 if rows else None  # (line 1: no seq to name)
        check = audit.ChainCheck(False, check.events, check.head, after, bad[1])
    seqs = {
        "first_seq": int(str(rows[0][0])) if rows else None,
        "last_seq": int(str(rows[-1][0])) if rows else None,
    }
    return check, seqs


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
    seqs: dict[str, int | None] = {}
    if file:
        check, seqs = _verify_file(file)
    else:
        store = open_store(db)
        check = audit.verify_url(store.engine.url.render_as_string(hide_password=False))
        with store.read() as conn:  # the sums kept from the record, checked against it
            drift = order_book.kept_sums_drift(conn) + order_book.totals_drift(conn)
    if json:
        emit_json({**check.as_json(), **(seqs if file else {"derived_drift": drift})})
    elif check.ok and file and check.events:
        say(
            f"audit trail intact: {check.events} events (seq {seqs['first_seq']} to "
            f"{seqs['last_seq']}), head {check.head}: an export is checked against itself; "
            "its first and last seq and head are the book's to compare"
        )
    elif check.ok:
        say(f"audit trail intact: {check.events} events, head {check.head}")
    if not check.ok:
        at = "" if check.first_bad_seq is None else f" at event {check.first_bad_seq}"
        raise VerificationFailed(f"audit trail broken{at}: {check.problem}")
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
    from reports.documents import whole_file  # (not for `audit verify`)
    from reports.exports import check_range

    first, last = parse_date(from_, "--from"), parse_date(to, "--to")
    check_range(first, last)
    since, until = day_start(first), day_start(last + timedelta(days=1))
    count = 0
    with open_store(db).read() as conn, whole_file(Path(out)) as fh:
        for ev in audit.events_of_days(conn, since, until):
            line = jsonlib.dumps(ev.as_json(), ensure_ascii=False, sort_keys=True) + "\n"
            fh.write(line.encode("utf-8"))
            count += 1
    if json:
        emit_json({"file": out, "events": count})
    else:
        say(f"{out}: {count} audit events")

"""a cash break's identity names its account and currency; ref-less venue rows name theirs

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 10:00:00

Until 0021 a cash break's key was built from refs alone (`C:<internal refs>|<venue refs>`, a ref
repeated on one side numbered REF#n across the whole run), and a venue record without an exec
id was named `<business date>/row:<line>`. Neither is unique across accounts or currencies (an
import's settlement entries of every account and currency share the import's ref; the files of
two accounts for one date both have a row 2), so a run for one account rewrote another's open
break. The code of this revision keys a cash break `C:<account>|<currency>|<value date>|<refs>|
<refs>`, numbers a repeated ref within its account, currency and value date (the date of the
book's movement: the business date the break was first seen; else its venue record's), and
names a ref-less venue record
`<date>/<account>/<currency>/row:<line>` (cash) or `<date>/<account>/row:<line>` (trades).

The upgrade rewrites the open breaks of cash and trade profiles to that form (break_key,
venue_refs, the refs of venue_records), so that the next run finds each under its new key and
it keeps its break_id, owner and comments: a venue record is named by its own account and
currency (the break's when the record is not kept), and a repeated ref of one account and
currency keeps its old number (REF#n counted every record of the ref in the run, matched
ones too, as the code still counts them within one account, currency and date: a break's
records are of one of those). Resolved breaks keep what they said.
A key that does not read as the refs of its break (not written by tieout) is left as it is.
The downgrade names the records and keys as 0021 did.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# written out, so that this revision stays what it was
OPEN_BREAKS = (
    "SELECT break_id, profile, kind, break_key, account, currency, first_seen, internal_refs, "
    "venue_refs, venue_records FROM recon_breaks "
    "WHERE status = 'open' AND kind IN ('cash', 'trades') ORDER BY break_id"
)
UPDATE = (
    "UPDATE recon_breaks SET break_key = :break_key, venue_refs = :venue_refs, "
    "venue_records = :venue_records WHERE break_id = :break_id"
)
OLD_ROW = re.compile(r"(\d{4}-\d{2}-\d{2})/row:(\d+)")
NEW_ROW = re.compile(r"(\d{4}-\d{2}-\d{2})/.*/row:(\d+)")
NUMBERED = re.compile(r"(.*)#(\d+)")


def _json(value: Any) -> str:  # as oms.audit.canonical_json writes it
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _new_row(ref: str, kind: str, account: str | None, currency: str | None) -> str:
    m = OLD_ROW.fullmatch(ref)
    if m is None:
        return ref
    scope = [account or ""] if kind == "trades" else [account or "", currency or ""]
    return "/".join([m[1], *scope, f"row:{m[2]}"])


def _old_row(ref: str) -> str:
    m = NEW_ROW.fullmatch(ref)
    return ref if m is None else f"{m[1]}/row:{m[2]}"


def _split(
    key: str, prefix: str, internal: list[str], venue: list[str]
) -> tuple[list[str], list[str]] | None:
    """The key refs (REF or REF#n) of a key `prefix<internal>|<venue>`, each side's
    comma-separated and sorted; None when the key does not read as those refs."""
    if not key.startswith(prefix):
        return None
    body = key[len(prefix) :]

    def plain(part: str) -> list[str]:
        return sorted(_base(x)[0] for x in part.split(",")) if part else []

    for at in (i for i, c in enumerate(body) if c == "|"):
        left, right = body[:at], body[at + 1 :]
        if plain(left) == sorted(internal) and plain(right) == sorted(venue):
            return (left.split(",") if left else []), (right.split(",") if right else [])
    return None


def _base(kref: str) -> tuple[str, int]:
    m = NUMBERED.fullmatch(kref)
    return (kref, 1) if m is None else (m[1], int(m[2]))


def _rename_kref(kref: str, renamed: dict[str, str], r: Any) -> str:
    ref, _ = _base(kref)
    return (renamed.get(ref) or _new_row(ref, r.kind, r.account, r.currency)) + kref[len(ref) :]


def _value_date(r: Any, records: list[dict[str, Any]]) -> str:
    """A cash break's value date: its book movement's (a cash run reads the movements of its
    business date: the one the break was first seen on), else its venue record's."""
    first = r.first_seen if isinstance(r.first_seen, str) else r.first_seen.isoformat()
    if json.loads(r.internal_refs) or not records:
        return str(first)[:10]
    return str(records[0].get("date") or first)[:10]


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(OPEN_BREAKS)).all()
    changes: dict[int, dict[str, Any]] = {}
    for r in rows:
        records = json.loads(r.venue_records)
        renamed: dict[str, str] = {}
        for rec in records:
            ref = rec.get("ref")
            if isinstance(ref, str):
                new = _new_row(
                    ref, r.kind, rec.get("account", r.account), rec.get("currency", r.currency)
                )
                renamed[ref] = rec["ref"] = new
        old_venue = json.loads(r.venue_refs)
        venue = [renamed.get(x) or _new_row(x, r.kind, r.account, r.currency) for x in old_venue]
        change: dict[str, Any] = {
            "break_id": r.break_id,
            "break_key": r.break_key,
            "venue_refs": _json(venue),
            "venue_records": _json(records),
        }
        changes[r.break_id] = change
        if r.kind == "cash" and r.break_key.startswith("C:balance:"):
            continue  # its key names its account and currency already
        prefix = "C:" if r.kind == "cash" else "T:"
        split = _split(r.break_key, prefix, json.loads(r.internal_refs), old_venue)
        if split is None:
            continue
        krefs_i, krefs_v = split
        krefs_v = [_rename_kref(x, renamed, r) for x in krefs_v]
        if r.kind == "trades":
            change["break_key"] = f"T:{','.join(krefs_i)}|{','.join(sorted(krefs_v))}"
            continue
        day = _value_date(r, records)
        refs = f"{','.join(sorted(krefs_i))}|{','.join(sorted(krefs_v))}"
        change["break_key"] = f"C:{r.account or ''}|{r.currency or ''}|{day}|{refs}"
    for change in changes.values():
        conn.execute(sa.text(UPDATE), change)


def downgrade() -> None:
    conn = op.get_bind()
    for r in conn.execute(sa.text(OPEN_BREAKS)).all():
        records = json.loads(r.venue_records)
        for rec in records:
            if isinstance(rec.get("ref"), str):
                rec["ref"] = _old_row(rec["ref"])
        key = r.break_key
        if r.kind == "cash" and not key.startswith("C:balance:"):
            head = re.escape(f"C:{r.account or ''}|{r.currency or ''}|") + r"[0-9-]*\|"
            key = re.sub("^" + head, "C:", key)
        key = re.sub(r"(\d{4}-\d{2}-\d{2})/[^|,]*/row:(\d+)", r"\1/row:\2", key)
        conn.execute(
            sa.text(UPDATE),
            {
                "break_id": r.break_id,
                "break_key": key,
                "venue_refs": _json([_old_row(x) for x in json.loads(r.venue_refs)]),
                "venue_records": _json(records),
            },
        )

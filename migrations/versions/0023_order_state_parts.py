"""the older part of a long order's fills and history, in chunks beside the order

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 10:00:00

- order_state_parts: an order's stored state (`orders.state`) kept every fill and every history
  entry it ever had, so a report on an order with thousands of fills rewrote all of them (about
  a megabyte at 5,000 fills, written to the journal at each commit). A list past 256 entries
  now keeps its full chunks of 256 here, named in the state by their digests; the state holds
  the rest. States written before are read as they are and chunked at their next change.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_state_parts",
        sa.Column("order_id", sa.String(32), sa.ForeignKey("orders.order_id"), nullable=False),
        sa.Column("part", sa.String(8), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(24), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "part", "seq"),
    )


def _json(value: Any) -> str:  # as oms.audit.canonical_json writes it
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def downgrade() -> None:
    # the chunks go back into their orders' states: a book below 0023 reads whole states
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT order_id, part, text FROM order_state_parts ORDER BY order_id, part, seq")
    ).all()
    chunks: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for order_id, part, text in rows:
        chunks[order_id][part].extend(json.loads(f"[{text}]"))
    for order_id, parts in chunks.items():
        state = json.loads(
            conn.execute(
                sa.text("SELECT state FROM orders WHERE order_id = :o"), {"o": order_id}
            ).scalar_one()
        )
        state.pop("parts", None)
        for part, items in parts.items():
            state[part] = items + state[part]
        conn.execute(
            sa.text("UPDATE orders SET state = :s WHERE order_id = :o"),
            {"s": _json(state), "o": order_id},
        )
    op.drop_table("order_state_parts")

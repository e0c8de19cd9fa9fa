"""orders by venue, for the orders routed to external venues: the book's venue spellings

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 12:00:00

- ix_orders_routed_venue (partial: venue <> 'paper'): `order submit` refuses a venue written in
  another case than the book knows it (acme for ACME), as `exec import` does: venue names are
  matched as written, so one venue under two spellings would book the same execution twice.
  The spellings are read by a loose scan of this index (a few probes, whatever the number of
  orders); the paper venue's orders stay out of it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# as oms.schema.ROUTED_WHERE says it now: written out, so that this revision stays what it was
ROUTED_WHERE = "venue <> 'paper'"

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    where = sa.text(ROUTED_WHERE)
    op.create_index(
        "ix_orders_routed_venue",
        "orders",
        ["venue"],
        sqlite_where=where,
        postgresql_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_orders_routed_venue", table_name="orders")

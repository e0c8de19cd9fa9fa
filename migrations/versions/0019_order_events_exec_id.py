"""order events by ExecID: which order applied a venue's report

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 12:00:00

- ix_order_events_exec_id (partial: exec_id IS NOT NULL): `exec apply` counts a fill that
  `exec import` booked first (the venue's trade file came before its drop copy) on the order
  its report names, without booking it again; this index finds whether another order counted
  that ExecID already, and lets `exec import` refuse to correct or bust it behind the order's
  back. Paper orders' events carry no ExecID and stay out of it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import oms.schema

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    where = sa.text(oms.schema.EXEC_ID_GIVEN)
    op.create_index(
        "ix_order_events_exec_id",
        "order_events",
        ["exec_id"],
        sqlite_where=where,
        postgresql_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_order_events_exec_id", table_name="order_events")

"""refused reports: the drop-copy reports `exec apply` refused

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 12:00:00

- refused_reports (order_id, exec_id, refused_at, file, line, reason): the first refusal of
  each ExecutionReport's ExecID (17) about an order it found. A report refused once could be
  applied silently by a later apply of its file, out of its place in the venue's sequence (the
  book had moved on: a bust made room for a fill refused as an overfill); such a report is now
  applied as the venue's fact and flagged as refused before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import oms.schema

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refused_reports",
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("exec_id", sa.Text(), nullable=False),
        sa.Column("refused_at", oms.schema.UTCDateTime(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "exec_id", name=op.f("pk_refused_reports")),
    )


def downgrade() -> None:
    op.drop_table("refused_reports")

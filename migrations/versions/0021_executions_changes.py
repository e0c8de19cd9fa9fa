"""corrections and busts by the execution they name

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 13:00:00

- ix_executions_changes (partial: exec_type <> 'fill'), on (venue, ref_exec_id): `exec list`
  and `export trades` say of a replaced execution which correction or bust decides its trade
  now (superseded_by), read for each batch of rows listed; the fills stay out of the index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# as oms.schema.CHANGES_WHERE says it now: written out, so that this revision stays what it was
CHANGES_WHERE = "exec_type <> 'fill'"

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    where = sa.text(CHANGES_WHERE)
    op.create_index(
        "ix_executions_changes",
        "executions",
        ["venue", "ref_exec_id"],
        sqlite_where=where,
        postgresql_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_executions_changes", table_name="executions")

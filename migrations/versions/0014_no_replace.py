"""append-only tables: no REPLACE on SQLite

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 10:00:00

- SQLite: every table with the append-only triggers (executions, the cash journal, the audit
  trail, order events, recon runs and break events, surveillance alerts, retention's records)
  also gets a BEFORE INSERT trigger that refuses a row whose primary or unique key a stored row
  has. `INSERT OR REPLACE` resolved such a conflict by deleting the stored row without firing
  its DELETE trigger, so a posting's amount could be swapped in place. Nothing changes on
  PostgreSQL (no REPLACE; an upsert fires the UPDATE trigger).
"""

from __future__ import annotations

from alembic import op

from migrations.triggers import (
    drop_no_replace_triggers,
    no_replace_triggers,
    sqlite_append_only_tables,
)

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        no_replace_triggers(bind, sqlite_append_only_tables(bind))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        drop_no_replace_triggers(bind, sqlite_append_only_tables(bind))

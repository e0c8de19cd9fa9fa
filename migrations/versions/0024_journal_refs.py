"""an index of the journal's entries by account and reference

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29 07:00:00

- ix_journal_entries_account_ref: a deposit or withdrawal with a reference looks for one booked
  already under it (the same movement again, a retry, is booked once); without the index that
  read every entry of the account, trades included.
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_journal_entries_account_ref", "journal_entries", ["account", "ref"])


def downgrade() -> None:
    op.drop_index("ix_journal_entries_account_ref", table_name="journal_entries")

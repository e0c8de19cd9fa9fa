"""an index of the journal's entries by account and value date

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29 07:00:00

- ix_journal_entries_account_value_date: what a cash account may pay out today leaves out the
  proceeds of its sales not settled yet, read from its entries of later value dates (without
  the index, from every entry of the account).
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_journal_entries_account_value_date", "journal_entries", ["account", "value_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_journal_entries_account_value_date", table_name="journal_entries")

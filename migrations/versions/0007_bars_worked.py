"""imports.bars_worked: how far the paper venue has worked a market-data import

The bars of an import, in (time, symbol) order, that the paper venue has worked its resting
orders against; updated in the same transaction as each bar's fills, so that work cut short (a
crash between the import and the fills, or among the bars) is resumed, never lost or repeated.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.add_column(sa.Column("bars_worked", sa.Integer(), nullable=True))
    # imports made before: their bars were worked when they were imported
    op.execute(
        "UPDATE imports SET bars_worked = (SELECT count(*) FROM market_bars "
        "WHERE market_bars.import_id = imports.import_id) WHERE kind = 'md'"
    )


def downgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("bars_worked")

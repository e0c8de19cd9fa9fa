"""index for order submission: an account's orders by time

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 14:00:00

- ix_orders_account_created_at (orders: account, created_at): the pre-trade checks count an
  account's orders in the rate window and look for duplicates in the duplicate window with an
  index range, not by reading every order the account ever sent.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_account_created_at", "orders", ["account", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_account_created_at", table_name="orders")

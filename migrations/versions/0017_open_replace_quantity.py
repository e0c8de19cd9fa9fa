"""order totals: an open replace's quantity counts in the open quantity

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 10:00:00

- order_totals.open_qty now counts an order with a replace open (pending_replace, or under a
  chained cancel) at the larger of its leaves and the replace's leaves (order_book.
  open_quantity): the venue may accept the replace, so the position limit and a cash
  account's short-sale check count what either may trade, as the cash held already did. Made
  again here from the live orders (oms.order_book.rebuild_totals); no column changes.
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from oms import order_book  # the totals as the code of this revision computes them

    order_book.rebuild_totals(op.get_bind())


def downgrade() -> None:
    from oms import order_book

    # as revision 0016 counts them (an order with a replace open at its leaves): its code moves
    # an order's row by that, and would drift from totals counted the new way
    order_book.rebuild_totals(op.get_bind(), leaves_only=True)

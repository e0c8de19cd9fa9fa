"""Lookups that a command makes once per message or row use an index, on both backends (a
growth audit: each `exec apply` message without Account read every client order id the book
ever had)."""

from __future__ import annotations

from oms.order_book import _IDS_OF_CLIENT_ID
from oms.store import Store
from tests.plans import query_plan


def test_a_client_order_id_without_its_account_is_found_by_its_index(store: Store) -> None:
    """A drop copy without Account (1) names its order by ClOrdID (11) alone: the key
    (account, client order id) does not serve it; ix_order_client_ids_client_order_id does."""
    plan = query_plan(store, _IDS_OF_CLIENT_ID, b_client_id="C1")
    assert "ix_order_client_ids_client_order_id" in plan, plan

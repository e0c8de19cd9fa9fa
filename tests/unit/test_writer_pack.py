"""What goes over the pipe to SQLite's writer process (oms.submission._pack/_unpack) comes
back as it went: plain rows by marshal, anything marshal cannot write by pickle. And the
pause of the cyclic garbage collector around a batch."""

from __future__ import annotations

import gc

from hypothesis import given
from hypothesis import strategies as st

from oms.submission import _no_cyclic_gc, _pack, _unpack
from oms.values import Side

values = st.one_of(st.none(), st.integers(), st.text(), st.binary())
rows = st.dictionaries(st.text(max_size=12), st.lists(st.tuples(values, values, values)))


@given(rows, st.tuples(st.integers(min_value=0), st.text()))
def test_plain_rows_go_by_marshal_and_come_back_equal(
    group: dict[str, list[tuple[object, ...]]], head: tuple[int, str]
) -> None:
    data = _pack((group, head))
    assert data[:1] == b"M"
    assert _unpack(data) == (group, head)


def test_a_value_marshal_cannot_write_goes_by_pickle_and_keeps_its_type() -> None:
    group = {"orders": [("O00000001", Side.BUY, None, 3)]}
    data = _pack((group, (7, "abc")))
    assert data[:1] == b"P"
    back, head = _unpack(data)
    assert back == group and head == (7, "abc")
    assert back["orders"][0][1] is Side.BUY


def test_what_a_batch_made_goes_to_the_oldest_generation_and_the_collector_runs_again() -> None:
    """oms.submission._no_cyclic_gc: no collection inside; afterwards the objects made inside
    are in generation 2, not walked by the next young collection; the collector is on."""
    assert gc.isenabled()
    with _no_cyclic_gc():
        assert not gc.isenabled()
        made = [[i] for i in range(1000)]  # lists: always tracked by the collector
    assert gc.isenabled()
    gc.collect(0)  # a young collection: it does not see them
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(o) in oldest for o in made)


def test_objects_a_program_froze_itself_stay_frozen() -> None:
    kept = [[i] for i in range(100)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with _no_cyclic_gc():
            made = [[i] for i in range(100)]
        # (not one for one: another thread of the test process may free frozen objects
        # meanwhile, 9 of 418,390 in one run; unfrozen, they would all be gone)
        assert frozen - 1000 <= gc.get_freeze_count() <= frozen
        assert gc.isenabled() and made and kept
    finally:
        gc.unfreeze()

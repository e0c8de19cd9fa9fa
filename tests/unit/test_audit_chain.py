import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from oms.audit import GENESIS, AuditEvent, canonical_json, check_chain, event_hash


def chain(n: int) -> list[AuditEvent]:
    events, prev = [], GENESIS
    for seq in range(1, n + 1):
        payload = canonical_json({"n": seq, "text": f"<b>é{seq}</b>"})
        at = f"2026-01-01T00:00:{seq % 60:02d}.000000Z"
        h = event_hash(prev, seq, at, "ops", "cash.deposit", "account", "A1", None, payload)
        events.append(AuditEvent(seq, at, "ops", "cash.deposit", "account", "A1", None, payload,
                                 prev, h))
        prev = h
    return events


def rows(events: list[AuditEvent]) -> list[tuple]:
    return [dataclasses.astuple(e) for e in events]


def test_an_intact_chain_verifies() -> None:
    result = check_chain(rows(chain(20)))
    assert result.ok
    assert result.events == 20
    assert result.first_bad_seq is None
    assert result.head == chain(20)[-1].hash


def test_empty_chain_is_intact() -> None:
    assert check_chain([]).as_json() == {"ok": True, "events": 0, "head": None,
                                         "first_bad_seq": None}


@given(st.integers(1, 15), st.sampled_from(["actor", "payload", "at", "reason", "entity_id"]))
def test_any_edit_is_caught_at_the_edited_event(bad: int, field: str) -> None:
    events = chain(15)
    events[bad - 1] = dataclasses.replace(events[bad - 1], **{field: "tampered"})
    result = check_chain(rows(events))
    assert not result.ok
    assert result.first_bad_seq == bad


def test_a_removed_event_is_caught() -> None:
    events = chain(10)
    del events[4]
    result = check_chain(rows(events))
    assert not result.ok
    assert result.first_bad_seq == 5


def test_rehashing_an_edit_still_breaks_the_next_link() -> None:
    events = chain(5)
    e = dataclasses.replace(events[1], payload='{"n":999}')
    e = dataclasses.replace(e, hash=event_hash(e.prev_hash, e.seq, e.at, e.actor, e.action,
                                               e.entity_type, e.entity_id, e.reason, e.payload))
    events[1] = e
    assert check_chain(rows(events)).first_bad_seq == 3


def test_a_later_segment_verifies_from_its_anchor() -> None:
    events = chain(10)
    seg = rows(events[5:])
    assert check_chain(seg, anchor=(5, events[4].hash)).ok
    assert not check_chain(seg).ok

"""Sums of decimals ranked by a key: the sum of the values whose keys come before a key, kept
as values change (a Fenwick tree over the sorted keys: log time for a sum and for a change).

Pure: no I/O, no clock. The paper venue uses it to tell, order after order while a bar fills
a cash account's resting buys, what the account's older live buys hold (oldest first, as the
bar's share is given out), without reading every older order again for every fill.
Exact: the sums run in the context the caller gives (the book's, lots.CONTEXT), as the values'
own sum would; a change adds the difference. A sum equals the plain sum of the values in value;
its text may keep trailing zeros of a value since changed (1.50 set to 0 leaves 0.00)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from decimal import Decimal

_ZERO = Decimal(0)


class RankedSums:
    """Values by key (`str` keys, ranked as strings compare); `before(key)` is the sum of the
    values of the keys below `key`, `set(key, value)` changes one value. The keys are those
    given at the start: a key outside them cannot take a value (KeyError)."""

    __slots__ = ("_keys", "_tree", "_values")

    def __init__(self, values: Mapping[str, Decimal]) -> None:
        self._keys = sorted(values)
        self._values = dict(values)
        tree = [_ZERO, *(self._values[k] for k in self._keys)]
        for i in range(1, len(tree)):  # each node adds itself to its parent: O(n)
            parent = i + (i & -i)
            if parent < len(tree):
                tree[parent] += tree[i]
        self._tree = tree

    def __len__(self) -> int:
        return len(self._keys)

    def value(self, key: str) -> Decimal:
        return self._values[key]

    def before(self, key: str) -> Decimal:
        """The sum of the values whose keys are below `key` (`key` itself need not be one)."""
        tree, total = self._tree, _ZERO
        i = bisect_left(self._keys, key)
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    def set(self, key: str, value: Decimal) -> None:
        """Change the value of `key` (one of the keys given at the start)."""
        delta = value - self._values[key]
        self._values[key] = value
        if not delta:
            return
        tree = self._tree
        i = bisect_left(self._keys, key) + 1
        while i < len(tree):
            tree[i] += delta
            i += i & -i

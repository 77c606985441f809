"""Pure-Python twin of hotpath._prefix: longest-prefix match with one dict per prefix length."""
from __future__ import annotations

import sys
from collections.abc import Iterable

MAX_DIGITS = 20

__all__ = ["PrefixTable", "MAX_DIGITS"]


def check_prefix(prefix: object) -> None:
    """Raise ValueError unless `prefix` is 0..20 ASCII digits."""
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be str, not {type(prefix).__name__}")
    if len(prefix) > MAX_DIGITS or not (prefix.isascii() and (prefix.isdigit() or prefix == "")):
        raise ValueError(f"prefix must be 0..{MAX_DIGITS} digits: {prefix!r}")


class PrefixTable:
    """Longest-prefix match of digit strings; values should not be None (None means no match)."""

    def __init__(self, items: Iterable[tuple[str, object]] | None = None):
        self._tables: dict[int, dict[str, object]] = {}
        self._lengths: list[int] | None = None
        for prefix, value in items or ():
            self.add(prefix, value)

    def add(self, prefix: str, value: object) -> None:
        """Map `prefix` ("" = default route) to `value`; a repeated prefix keeps the last value."""
        check_prefix(prefix)
        if value is None:
            raise ValueError("a prefix value must not be None (None means no match)")
        self._tables.setdefault(len(prefix), {})[prefix] = value
        self._lengths = None

    def build(self) -> "PrefixTable":
        """Finish adding; lookups call it when needed."""
        self._sort()
        return self

    def _sort(self) -> list[int]:
        self._lengths = sorted(self._tables, reverse=True)
        return self._lengths

    def lookup(self, number: str) -> object | None:
        """The value of the longest prefix of `number`, None if none matches or it has a
        non-digit."""
        if not isinstance(number, str):
            raise TypeError(f"number must be str, not {type(number).__name__}")
        if not (number.isascii() and number.isdigit()) and number:
            return None
        n = len(number)
        for length in self._lengths if self._lengths is not None else self._sort():
            if length <= n:
                value = self._tables[length].get(number[:length])
                if value is not None:
                    return value
        return None

    def lookup_prefix(self, number: str) -> tuple[str, object] | None:
        """(prefix, value) of the longest prefix of `number`, or None like lookup()."""
        if not isinstance(number, str):
            raise TypeError(f"number must be str, not {type(number).__name__}")
        if not (number.isascii() and number.isdigit()) and number:
            return None
        n = len(number)
        for length in self._lengths if self._lengths is not None else self._sort():
            if length <= n:
                value = self._tables[length].get(number[:length])
                if value is not None:
                    return number[:length], value
        return None

    def items(self) -> list[tuple[str, object]]:
        """Every (prefix, value), sorted by prefix."""
        return sorted((p, v) for table in self._tables.values() for p, v in table.items())

    @property
    def nbytes(self) -> int:
        """Approximate memory held by the table (dicts and key strings, not the values)."""
        return sum(sys.getsizeof(t) + sum(map(sys.getsizeof, t)) for t in self._tables.values())

    def __len__(self) -> int:
        return sum(map(len, self._tables.values()))

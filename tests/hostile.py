"""Hostile payloads for the fuzz tests of every ingest path (issue 15), each with what it must become.

A part is (payload bytes, readings it must store, rows it must quarantine). Every reading has a
timestamp of its own and every hostile element a number of its own, so that nothing is a duplicate
and no two quarantined rows are the same text.
"""

from __future__ import annotations

import itertools
import json

from hypothesis import strategies as st

T0 = 1_767_500_000  # before the frozen clock's now
_counter = itertools.count(1)


def unique() -> int:
    return next(_counter)


def _ts() -> int:
    return T0 + unique()


# A payload or an element of one: (its JSON text, readings it must store, rows it must quarantine).
Element = tuple[bytes, int, int]


def _good(head: bytes) -> st.SearchStrategy[Element]:
    return st.floats(-10, 60, allow_nan=False).map(lambda v: (b'{%s"ts":%d,"value":%r}' % (head, _ts(), v), 1, 0))


def _bad(head: bytes) -> st.SearchStrategy[Element]:
    """A reading that is JSON but not a valid reading: exactly one quarantined row each."""

    def reading(value: bytes) -> Element:
        return b'{%s"ts":%d,"value":%s}' % (head, _ts(), value), 0, 1

    return st.one_of(
        st.integers(310, 5000).map(lambda digits: reading(b"1" + b"0" * digits)),  # no float holds it
        st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400"]).map(reading),
        st.integers(2, 1000).map(lambda d: reading(b"[" * d + b"%d" % unique() + b"]" * d)),
        st.sampled_from([b'"abc"', b"true", b"null", b"{}", b'""']).map(reading),
        st.integers(1000, 300_000).map(lambda n: reading(json.dumps("x" * n).encode())),
        st.just(None).map(lambda _: (b'{%s"ts":"yesterday","value":1.0,"n":%d}' % (head, unique()), 0, 1)),
        # not a reading at all: a bare number, a string, or a list nested past the parsers' depth
        st.just(None).map(lambda _: (b"%d" % unique(), 0, 1)),
        st.integers(1025, 5000).map(lambda d: (b"[" * d + b"%d" % unique() + b"]" * d, 0, 1)),
    )


def _joined(items: list[Element]) -> Element:
    return b"[" + b",".join(i[0] for i in items) + b"]", sum(i[1] for i in items), sum(i[2] for i in items)


def unreadable() -> st.SearchStrategy[Element]:
    """Payloads that are not JSON at all: one malformed row each."""
    return st.one_of(
        st.binary(min_size=1, max_size=64).map(lambda b: b"\xff" + b),  # never UTF-8
        st.just(b""),
        st.integers(1025, 100_000).map(lambda d: b"{" * d),
        st.integers(1000, 200_000).map(lambda n: b"x" * n),
    ).map(lambda payload: (payload, 0, 1))


def message() -> st.SearchStrategy[Element]:
    """One MQTT payload on a sensor topic: a reading, a list of good and bad readings, or garbage."""
    single = st.one_of(_good(b""), _bad(b""))
    mixed = st.lists(st.one_of(_good(b""), _bad(b"")), min_size=1, max_size=6).map(_joined)
    return st.one_of(single, mixed, unreadable())


def body(asset: str, sensor: str) -> st.SearchStrategy[Element]:
    """One HTTP push: a JSON list of good and bad readings of one sensor, or garbage."""
    head = b'"asset":"%s","sensor":"%s",' % (asset.encode(), sensor.encode())
    return st.one_of(st.lists(st.one_of(_good(head), _bad(head)), min_size=1, max_size=8).map(_joined), unreadable())

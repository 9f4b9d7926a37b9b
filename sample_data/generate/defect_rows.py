"""Defect rows placed inside the big files: malformed and rule-breaking records made from sample
rows, verbatim duplicates of the record before, how many of each a file gets, and their tally."""

from __future__ import annotations

from .events import Events
from .generator import Generator
from .manifest import DUPLICATE_ROW
from .writing import _Insert, _row_bytes

OVERLONG_BYTES = 100 * 1024


def defect_counts(rows: int) -> tuple[int, int]:
    """(rule violations per kind, duplicate rows) for a file of `rows` records."""
    return 1 + rows // 500_000, 3 + rows // 100_000


def rule_inserts(gen: Generator, raw: list[list[str]], ev: Events, ci: dict[str, int], k: int, origin: str,
                 duration: str, service: str, bad_service: str, imsi: str, apn: str,
                 style: str) -> tuple[list[_Insert], int]:
    """Malformed and rule-breaking records made from sample rows; returns them and rows used."""
    inserts: list[_Insert] = []
    r = 0

    def add(kind: str, values: list[str]) -> None:
        data = _row_bytes(values, style)
        inserts.append(_Insert(kind, lambda prev, data=data: data))

    for _ in range(k):
        row = list(raw[r]); r += 1
        email = gen.pop.email[int(ev.sub[r - 1])].as_py()
        row[ci[origin]] = email
        gen.collect.add(emails=[email])
        add("email_as_origin", row)
        row = list(raw[r]); r += 1
        row[ci[duration]] = "-" + str(1 + int(ev.sub[r - 1]) % 90)
        add("negative_duration", row)
        row = list(raw[r]); r += 1
        row[ci[service]] = bad_service
        add("unknown_service_type", row)
        row = list(raw[r]); r += 1
        row[ci[imsi]] = row[ci[imsi]][:4] + "O" + row[ci[imsi]][5:]    # letter O for a zero
        add("bad_imsi", row)
    row = list(raw[r]); r += 1
    add("too_few_fields", row[:-5])
    row = list(raw[r]); r += 1
    add("too_many_fields", row + ["", "EXTRA"])
    row = list(raw[r]); r += 1
    row[ci[apn]] = ("internet." * (OVERLONG_BYTES // 9 + 1))[:OVERLONG_BYTES]
    add("overlong_field", row)
    return inserts, r


def duplicate_inserts(k: int) -> list[_Insert]:
    """k records that repeat the record written before them."""
    return [_Insert(DUPLICATE_ROW, lambda prev: prev) for _ in range(k)]


def defect_kinds(inserts: list[_Insert], **extra: int) -> dict[str, int]:
    """Injected records by kind, plus file-level `extra` counts."""
    out: dict[str, int] = {}
    for i in inserts:
        out[i.kind] = out.get(i.kind, 0) + 1
    return {**out, **extra}

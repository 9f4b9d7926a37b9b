"""transforms/lake/records.py: JSON records written whole, read back as the dataclasses they were."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Optional

import pytest

from transforms.lake.records import from_plain, read_json, read_record, to_plain, write_json

AT = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)
CET = timezone(timedelta(hours=1))


@dataclass(frozen=True)
class Part:
    day: date
    rows: int
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    name: str
    at: datetime
    parts: tuple[Part, ...]
    pair: tuple[int, str]
    first: Part | None
    night: Optional[date]
    share: float
    ok: bool
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


FACTS = Facts(
    name="billing_20261122.csv", at=datetime(2026, 11, 23, 3, 30, 0, 123456, tzinfo=CET),
    parts=(Part(date(2026, 11, 21), 2, ("a.parquet", "b.parquet")), Part(date(2026, 11, 22), 1)),
    pair=(7, "seven"), first=Part(date(2026, 11, 21), 2), night=None, share=0.5, ok=True,
    counts={"loaded": 3, "rejected": 1}, notes=["č", "ž"],
)


def test_typed_round_trip_of_nested_dataclasses_tuples_dates_and_optionals(tmp_path):
    path = tmp_path / "facts" / "file-a.json"          # the folder is made
    write_json(path, FACTS)
    back = read_record(path, Facts)
    assert back == FACTS
    # The declared types, not JSON's lists and strings.
    assert isinstance(back.parts, tuple) and isinstance(back.parts[0], Part)
    assert isinstance(back.parts[0].files, tuple)
    assert isinstance(back.pair, tuple) and back.pair == (7, "seven")
    assert type(back.parts[0].day) is date and back.at.utcoffset() == timedelta(hours=1)
    assert back.night is None and back.first == Part(date(2026, 11, 21), 2)
    assert isinstance(back.notes, list) and back.counts == {"loaded": 3, "rejected": 1}


def test_an_optional_with_a_value(tmp_path):
    path = tmp_path / "f.json"
    write_json(path, Facts(**{**FACTS.__dict__, "night": date(2026, 11, 22), "first": None}))
    back = read_record(path, Facts)
    assert (back.night, back.first) == (date(2026, 11, 22), None)


def test_a_tuple_of_records_at_the_top(tmp_path):
    path = tmp_path / "rows.json"
    rows = (Part(date(2026, 1, 1), 1), Part(date(2026, 1, 2), 2, ("x",)))
    write_json(path, rows)
    assert read_record(path, tuple[Part, ...]) == rows


def test_write_json_is_plain_sorted_json_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "plan.json"
    write_json(path, {"n": 2, "at": AT, "check": Part(date(2026, 11, 22), 3)})
    assert json.loads(path.read_text()) == {
        "at": "2026-11-23T02:30:00+00:00", "check": {"day": "2026-11-22", "files": [], "rows": 3}, "n": 2}
    assert path.read_text().index('"at"') < path.read_text().index('"check"') < path.read_text().index('"n"')
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_write_json_keeps_text_as_written(tmp_path):
    path = tmp_path / "t.json"
    write_json(path, {"term": "številka IMSI"})
    assert "številka" in path.read_text(encoding="utf-8")


def test_write_json_replaces_a_record_whole(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"n": 1, "long": "x" * 1000})
    write_json(path, {"n": 2})
    assert read_json(path) == {"n": 2}


def test_read_json_of_a_missing_file_is_the_default(tmp_path):
    assert read_json(tmp_path / "none.json") is None
    assert read_json(tmp_path / "none.json", default=[]) == []


def test_to_plain():
    assert to_plain({1: (date(2026, 1, 2), [AT])}) == {"1": ["2026-01-02", ["2026-11-23T02:30:00+00:00"]]}
    assert to_plain(Part(date(2026, 1, 2), 1)) == {"day": "2026-01-02", "rows": 1, "files": []}
    assert to_plain(Part) is Part                          # a class is not a record


def test_an_unknown_field_is_refused_by_name():
    plain = to_plain(Part(date(2026, 1, 2), 1))
    with pytest.raises(ValueError, match=r"Part: unknown field\(s\) \['renamed'\]"):
        from_plain(Part, {**plain, "renamed": 1})


def test_a_missing_field_is_refused():
    with pytest.raises(TypeError):
        from_plain(Part, {"day": "2026-01-02"})           # rows has no default


@pytest.mark.parametrize("kind, value", [
    (int, "3"),            # text where a number is declared
    (int, 1.5),            # would lose the half
    (int, True),           # JSON true is not a count
    (float, "0.5"),
    (float, False),
    (str, 7),
    (bool, 1),
    (bool, "true"),
    (date, 20261122),
    (tuple[int, str], [1, 2]),
])
def test_a_value_of_the_wrong_type_is_refused(kind, value):
    with pytest.raises(TypeError):
        from_plain(kind, value)


def test_wrong_types_inside_a_record_are_refused():
    plain = to_plain(FACTS)
    with pytest.raises(TypeError):
        from_plain(Facts, {**plain, "parts": [{"day": "2026-11-21", "rows": "2"}]})
    with pytest.raises(TypeError):
        from_plain(Facts, {**plain, "share": "half"})
    with pytest.raises(ValueError):
        from_plain(Facts, {**plain, "pair": [7, "seven", "extra"]})    # a fixed tuple of two
    with pytest.raises(ValueError):
        from_plain(Facts, {**plain, "night": "22 Nov 2026"})


@pytest.mark.parametrize("kind, value, expected", [
    (float, 1, 1.0),        # JSON writes 1.0 as 1
    (int, 3, 3),
    (Optional[int], None, None),
    (int | None, 4, 4),
    (dict[str, date], {"a": "2026-01-02"}, {"a": date(2026, 1, 2)}),
    (list[tuple[str, int]], [["a", 1]], [("a", 1)]),
])
def test_values_of_the_declared_type_are_accepted(kind, value, expected):
    got = from_plain(kind, value)
    assert got == expected and type(got) is type(expected)

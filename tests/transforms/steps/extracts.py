"""What the tests of the fixed-header extracts (payments, consents: `transforms/steps/extract.py`) share: a
landing file written by hand, a zone's rows, and the check that each bad row sits in quarantine once, with its
reason, the failing value blanked and every other value as delivered."""

from __future__ import annotations

from pathlib import Path

from tests.transforms.conftest import read_parquet


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / "landing" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def zone_rows(lake, zone: str, sql: str) -> list[tuple]:
    """Rows of `sql` over a zone's part files (as view `t`, partition columns included)."""
    return read_parquet(f"{lake.zone(zone)}/*/*.parquet", hive=True, sql=sql)


def assert_quarantined_as_declared(lake, result, bad_rows: dict[int, tuple[str, str, str | None]],
                                   columns: list[str], night: str, dataset: str) -> None:
    """`bad_rows`: source row -> (the line as delivered, its reason, the column blanked or None)."""
    expected: dict[str, int] = {}
    for _, reason, _ in bad_rows.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert result.quarantined_by_reason == expected
    got = {r[0]: r[1:] for r in zone_rows(
        lake, "quarantine", f"SELECT source_row, reason, night, dataset, {', '.join(columns)} FROM t")}
    assert set(got) == set(bad_rows)
    for source_row, (row, reason, blanked) in bad_rows.items():
        q_reason, q_night, q_dataset = got[source_row][:3]
        assert (q_reason, str(q_night), q_dataset) == (reason, night, dataset)
        kept = dict(zip(columns, got[source_row][3:]))
        raw = dict(zip(columns, row.split(",")))
        for column in columns:
            want = None if column == blanked or raw[column] == "" else raw[column]
            assert kept[column] == want, (source_row, column)

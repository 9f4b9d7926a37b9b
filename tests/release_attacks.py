"""The differencing attacks on aggregate releases, as checks a test runs over a lake (docs/design.md §4).

* version minus version: no released file ever changes or goes (snapshots taken night after night), and no
  analytics part is named by two releases of a day — so no two releases share a row;
* late release minus nothing: every row of every table of a late release, read alone, describes at least k
  subscribers, counted from the analytics rows its manifest names (not from the release's own figures).
"""

from __future__ import annotations

import hashlib

import duckdb

from transforms.lake import Lake
from transforms.privacy.generalize import UNKNOWN_AREA
from transforms.privacy.releases import LATE, manifests, release_folder
from transforms.privacy.suppression import MEASURES


def snapshot(lake: Lake) -> dict[str, str]:
    """sha256 of every file of the aggregates zone."""
    return {str(p.relative_to(lake.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(lake.zone("aggregates").rglob("*")) if p.is_file()}


def assert_released_once(lake: Lake, snaps: list[dict[str, str]], days) -> None:
    """Version minus version: no released file ever changes or goes, and no part is in two releases."""
    for before, after in zip(snaps, snaps[1:]):
        for path, digest in before.items():
            assert after.get(path) == digest, f"{path} changed after it was released"
    for day in days:
        named = [p for m in manifests(lake, day) for p in m.parts]
        assert len(named) == len(set(named)), f"a part of {day} is in two releases"


def recount(lake: Lake, k: int, days) -> list[tuple]:
    """Late release minus nothing: every row of every table of every late release, read alone, with the
    subscribers recounted from the analytics rows its manifest names; the rows under k."""
    under = []
    con = duckdb.connect()
    try:
        for day in days:
            for m in (m for m in manifests(lake, day) if m.kind == LATE):
                parts = [str(lake.zone("analytics") / f"event_date={day}" / p) for p in m.parts]
                con.execute("CREATE OR REPLACE TABLE rows_ AS SELECT * REPLACE (coalesce(area, ?) AS area)"
                            " FROM read_parquet(?)", [UNKNOWN_AREA, parts])
                analytics_cols = {r[0] for r in con.execute("DESCRIBE rows_").fetchall()}
                for table in sorted(release_folder(lake, day, m.release).glob("*.parquet")):
                    cols = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(table)])
                            .fetchall()]
                    keys = [c for c in cols if c in analytics_cols and c not in MEASURES and c != "event_date"]
                    on = " AND ".join(f"r.{c} IS NOT DISTINCT FROM t.{c}" for c in keys) or "true"
                    under += con.execute(
                        f"SELECT ?, t.*, count(DISTINCT r.origin_number) AS n FROM read_parquet(?) t"
                        f" LEFT JOIN rows_ r ON {on} GROUP BY ALL HAVING n < ?",
                        [f"{day}#{m.release}/{table.name}", str(table), k]).fetchall()
    finally:
        con.close()
    return under

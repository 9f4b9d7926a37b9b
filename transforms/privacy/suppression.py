"""Suppression: what of the aggregates may be released, so no figure describes fewer than k people.

No released figure may describe fewer than k subscribers (k: the policy's `analytics.k_anonymity`,
§3.3), neither directly nor by differencing a released total against its released parts:

* primary suppression — a cell or total with fewer than k subscribers;
* secondary suppression — for every released total, what it hides (total minus everything released
  beneath it) must be nothing, or at least two suppressed cells whose subscribers together (a union, not
  a sum) number k or more. Otherwise the smallest released parts are suppressed too, or, failing that,
  the total itself. Repeated until nothing changes.

Only `suppress` makes a `Released`; `write_released` accepts nothing else, so an unchecked table cannot
reach the zone (docs/design.md §4).
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

from transforms.lake.commit import commit_folder, sha256_file
from transforms.lake.connection import execute

CELL_KEYS = ("event_hour", "service_type", "area", "service_area", "called_country_code")
MEASURES = ("subscribers", "events", "minutes", "data_volume_bytes", "revenue")
# File names inside `event_date=YYYY-MM-DD/`; the date itself is in the folder name (hive layout).
CELLS_FILE, BY_SERVICE_FILE, DAY_FILE = "cells.parquet", "by_service.parquet", "day.parquet"
PRIMARY, SECONDARY = "primary", "secondary"


@dataclass(frozen=True)
class ReleasedPartition:
    """The staged files of one event date, with their sha256 so the writer can tell they are unchanged."""

    event_date: str
    cells: str
    by_service: str
    day: str
    sha256: tuple[tuple[str, str], ...]   # (file name, digest)


_MINTING = threading.local()


@dataclass(frozen=True)
class Released:
    """Aggregates that passed suppression, staged and ready to write. Only `suppress` makes one."""

    k: int
    partitions: tuple[ReleasedPartition, ...]
    groups_total: int
    groups_released: int
    groups_suppressed_primary: int
    groups_suppressed_secondary: int
    rows_suppressed: int
    totals_total: int
    totals_released: int
    totals_suppressed_primary: int
    totals_suppressed_secondary: int

    def __post_init__(self) -> None:
        # Also refuses dataclasses.replace(): a Released is never edited, only made by the check.
        if not getattr(_MINTING, "active", False):
            raise TypeError("Released is made only by transforms.privacy.suppression.suppress")


def _mint(**fields) -> Released:
    _MINTING.active = True
    try:
        return Released(**fields)
    finally:
        _MINTING.active = False


def suppress(con: duckdb.DuckDBPyConnection, k: int, stage_dir: Path) -> Released:
    """Decide what is released from `cells`/`totals`, stage it as Parquet, and return the `Released`."""
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    con.execute("DROP TABLE IF EXISTS small_pairs")   # made on demand by _union_size, for this k and these pairs
    cells = con.execute(
        "SELECT cell_id, CAST(event_date AS VARCHAR), service_type, subscribers, events FROM cells").fetchall()
    totals = con.execute(
        "SELECT total_id, CAST(event_date AS VARCHAR), service_type, is_day, subscribers FROM totals").fetchall()
    plan = SuppressionDecision(k, cells, totals, lambda ids: _union_size(con, k, ids))
    plan.run()
    plan.verify()

    stage_dir.mkdir(parents=True, exist_ok=True)
    con.execute("CREATE OR REPLACE TEMP TABLE cell_out AS SELECT unnest($ids::BIGINT[]) AS cell_id",
                {"ids": sorted(plan.released_cells())})
    con.execute("CREATE OR REPLACE TEMP TABLE total_out AS SELECT unnest($ids::BIGINT[]) AS total_id",
                {"ids": sorted(plan.released_totals())})
    cols = ", ".join((*CELL_KEYS, *MEASURES))
    partitions = []
    for day in sorted({c[1] for c in cells}):
        part = stage_dir / f"event_date={day}"
        part.mkdir(parents=True, exist_ok=True)
        outputs = (
            (CELLS_FILE, f"SELECT {cols} FROM cells JOIN cell_out USING (cell_id) "
                         f"WHERE event_date = CAST($d AS DATE) ORDER BY cell_id"),
            (BY_SERVICE_FILE, f"SELECT service_type, {', '.join(MEASURES)} FROM totals JOIN total_out USING (total_id) "
                              f"WHERE event_date = CAST($d AS DATE) AND NOT is_day ORDER BY total_id"),
            (DAY_FILE, f"SELECT {', '.join(MEASURES)} FROM totals JOIN total_out USING (total_id) "
                       f"WHERE event_date = CAST($d AS DATE) AND is_day"),
        )
        digests = []
        for name, sql in outputs:
            path = part / name
            execute(con, f"COPY ({sql}) TO $dst (FORMAT parquet, COMPRESSION zstd)",
                             {"d": day, "dst": str(path)})
            digests.append((name, sha256_file(path)))
        partitions.append(ReleasedPartition(day, str(part / CELLS_FILE), str(part / BY_SERVICE_FILE),
                                            str(part / DAY_FILE), tuple(digests)))
    # The staged files are checked once more from disk before they can be handed out.
    for p in partitions:
        for path in (p.cells, p.by_service, p.day):
            low = execute(con, "SELECT min(subscribers) FROM read_parquet($p)", {"p": path}).fetchone()[0]
            if low is not None and low < k:
                raise AssertionError("a staged aggregate row has fewer than k subscribers")  # never expected
    c_sup, t_sup = plan.cell_reason, plan.total_reason
    return _mint(
        k=k, partitions=tuple(partitions),
        groups_total=len(cells), groups_released=len(cells) - len(c_sup),
        groups_suppressed_primary=sum(r == PRIMARY for r in c_sup.values()),
        groups_suppressed_secondary=sum(r == SECONDARY for r in c_sup.values()),
        rows_suppressed=sum(plan.events[c] for c in c_sup),
        totals_total=len(totals), totals_released=len(totals) - len(t_sup),
        totals_suppressed_primary=sum(r == PRIMARY for r in t_sup.values()),
        totals_suppressed_secondary=sum(r == SECONDARY for r in t_sup.values()))


def _union_size(con: duckdb.DuckDBPyConnection, k: int, cell_ids) -> int:
    """Distinct subscribers of several cells under k together (a union, not a sum), counted per key id.

    Tokens made with different keys cannot be matched (see build_groups), so the largest per-key
    count is used: a lower bound of the people behind the cells. The first call keeps the pairs of
    all cells under k (`small_pairs`), so each later union is a query over those alone.
    """
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'small_pairs'").fetchone()[0]:
        execute(con, """CREATE TEMP TABLE small_pairs AS SELECT c.cell_id, p.kh, p.sub
                                 FROM pairs p JOIN cells c USING (ck) WHERE c.subscribers < $k""", {"k": k})
    n = execute(con, """
        SELECT max(n) FROM (SELECT kh, count(DISTINCT sub) AS n FROM small_pairs
                            WHERE cell_id IN (SELECT unnest($ids::BIGINT[])) GROUP BY kh)""",
                         {"ids": sorted(cell_ids)}).fetchone()[0]
    return int(n or 0)


class SuppressionDecision:
    """The suppression decision for every cell and total; plain Python over the (small) group list."""

    def __init__(self, k: int, cells: list[tuple], totals: list[tuple], union_size):
        self.k, self.union_size, self._unions = k, union_size, {}
        self.subs = {c[0]: c[3] for c in cells}
        self.events = {c[0]: c[4] for c in cells}
        self.children: dict[tuple, list[int]] = {}          # (date, service_type) -> cell ids
        for cell_id, day, service, _, _ in cells:
            self.children.setdefault((day, service), []).append(cell_id)
        self.service_total: dict[tuple, int] = {}           # (date, service_type) -> total id
        self.day_total: dict[str, int] = {}
        self.total_subs = {}
        for total_id, day, service, is_day, subs in totals:
            self.total_subs[total_id] = subs
            if is_day:
                self.day_total[day] = total_id
            else:
                self.service_total[(day, service)] = total_id
        self.cell_reason = {c: PRIMARY for c, s in self.subs.items() if s < k}
        self.total_reason = {t: PRIMARY for t, s in self.total_subs.items() if s < k}

    def released_cells(self) -> set[int]:
        return set(self.subs) - set(self.cell_reason)

    def released_totals(self) -> set[int]:
        return set(self.total_subs) - set(self.total_reason)

    def _covered(self, hidden: list[int]) -> bool:
        """Nothing hidden, or ≥ 2 cells whose subscribers together (union) are ≥ k."""
        if not hidden:
            return True
        if len(hidden) < 2:
            return False
        if any(self.subs[c] >= self.k for c in hidden):
            return True
        if sum(self.subs[c] for c in hidden) < self.k:
            return False
        ids = frozenset(hidden)
        if ids not in self._unions:     # rare (most hidden sets are settled above), and it asks the database
            self._unions[ids] = self.union_size(ids)
        return self._unions[ids] >= self.k

    def _smallest(self, ids, size) -> int | None:
        return min(ids, key=lambda i: (size(i), str(i)), default=None)   # str: a service may be NULL

    def _hidden_under_service(self, key) -> list[int]:
        return [c for c in self.children[key] if c in self.cell_reason]

    def _hidden_under_day(self, services: list[tuple]) -> list[int]:
        # day total − released service totals − released cells of suppressed service totals
        return [c for key in services if self.service_total[key] in self.total_reason
                for c in self._hidden_under_service(key)]

    def _fix_service(self, key) -> bool:
        changed = False
        while not self._covered(self._hidden_under_service(key)):
            cand = self._smallest([c for c in self.children[key] if c not in self.cell_reason],
                                  lambda c: (self.subs[c], self.events[c]))
            if cand is None:
                self.total_reason[self.service_total[key]] = SECONDARY
                return True
            self.cell_reason[cand] = SECONDARY
            changed = True
        return changed

    def _fix_day(self, day: str, services: list[tuple]) -> bool:
        changed = False
        while not self._covered(self._hidden_under_day(services)):
            open_services = [key for key in services if self.service_total[key] not in self.total_reason]
            by_size = lambda key: (self.total_subs[self.service_total[key]], key[1] or "")  # noqa: E731
            # 1. a released service total that already hides cells: suppressing it adds them to the day's hidden set
            key = self._smallest([s for s in open_services if self._hidden_under_service(s)], by_size)
            if key is None:
                # 2. a released cell under an already suppressed service total
                exposed = [c for s in services if s not in open_services for c in self.children[s]
                           if c not in self.cell_reason]
                cell = self._smallest(exposed, lambda c: (self.subs[c], self.events[c]))
                if cell is not None:
                    self.cell_reason[cell] = SECONDARY
                    changed = True
                    continue
                # 3. any released service total (its cells become candidates for 2.)
                key = self._smallest(open_services, by_size)
            if key is None:
                self.total_reason[self.day_total[day]] = SECONDARY
                return True
            self.total_reason[self.service_total[key]] = SECONDARY
            changed = True
        return changed

    def run(self) -> None:
        services_of: dict[str, list[tuple]] = {}
        for key in self.service_total:
            services_of.setdefault(key[0], []).append(key)
        changed = True
        while changed:          # only ever suppresses more, so this ends
            changed = False
            for day, services in sorted(services_of.items()):
                for key in sorted(services, key=lambda s: s[1] or ""):
                    if self.service_total[key] not in self.total_reason:
                        changed |= self._fix_service(key)
                if self.day_total[day] not in self.total_reason:
                    changed |= self._fix_day(day, services)

    def verify(self) -> None:
        """The release rule, checked on the final decision (independent of how it was reached)."""
        if any(self.subs[c] < self.k for c in self.released_cells()) or any(
                self.total_subs[t] < self.k for t in self.released_totals()):
            raise AssertionError("a released group has fewer than k subscribers")   # never expected
        for key, t in self.service_total.items():
            if t not in self.total_reason and not self._covered(self._hidden_under_service(key)):
                raise AssertionError("a released service total reveals a suppressed cell")
        for day, t in self.day_total.items():
            services = [key for key in self.service_total if key[0] == day]
            if t not in self.total_reason and not self._covered(self._hidden_under_day(services)):
                raise AssertionError("a released day total reveals a suppressed cell")


def write_released(released: Released, out_dir: Path) -> tuple[str, ...]:
    """Write a `Released` (and nothing else) to `out_dir/event_date=…/`, one folder swap per date."""
    if not isinstance(released, Released):
        raise TypeError("write_released accepts only a Released made by suppress()")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for part in released.partitions:
        sources = (part.cells, part.by_service, part.day)
        for name, digest in part.sha256:
            if sha256_file(Path(part.cells).parent / name) != digest:
                raise ValueError(f"staged aggregate {name} for {part.event_date} changed after suppression")
        final = out_dir / f"event_date={part.event_date}"
        # Commit point: the date's three files appear together.
        commit_folder(final, lambda stage, sources=sources: [shutil.copyfile(src, stage / Path(src).name)
                                                             for src in sources])
        written += [str(final / Path(src).name) for src in sources]
    return tuple(written)

"""Step — aggregates: k-anonymous daily counts and sums from the analytics rows (DESIGN §2, §4).

Cells are grouped by (event_date, event_hour, service_type, area, service_area,
called_country_code); each carries subscribers (distinct origin tokens),
events, minutes, data volume and revenue. Two levels of marginal totals are
released beside them: per (event_date, service_type) and per event_date.

No released figure may describe fewer than k subscribers (k from the policy,
§3.3), neither directly nor by differencing a released total against its
released parts:

* primary suppression — a cell or total with fewer than k subscribers;
* secondary suppression — for every released total, what it hides (total minus
  everything released beneath it) must be nothing, or at least two suppressed
  cells whose subscribers together (a union, not a sum) number k or more.
  Otherwise the smallest released parts are suppressed too, or, failing that,
  the total itself. Repeated until nothing changes.

Only `suppress` makes a `Released`; `write_released` accepts nothing else, so
an unchecked table cannot reach the zone. Subscriber tokens are only counted,
never written.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from transforms import lake as lake_mod
from transforms.generalize import UNKNOWN_AREA
from transforms.policy import Policy
from transforms.pseudonymize import KEY_ID_COLUMN

CELL_KEYS = ("event_hour", "service_type", "area", "service_area", "called_country_code")
MEASURES = ("subscribers", "events", "minutes", "data_volume_bytes", "revenue")
# File names inside `event_date=YYYY-MM-DD/`; the date itself is in the folder name (hive layout).
CELLS_FILE, BY_SERVICE_FILE, DAY_FILE = "cells.parquet", "by_service.parquet", "day.parquet"
PRIMARY, SECONDARY = "primary", "secondary"


@dataclass(frozen=True)
class AggregateResult:
    """What one aggregate run released and suppressed; counts only (recorded in `aggregate_releases`)."""

    k: int
    clause: str
    event_dates: tuple[str, ...]
    rows_in: int                         # analytics rows read
    groups_total: int                    # cells before suppression
    groups_released: int
    groups_suppressed_primary: int       # fewer than k subscribers
    groups_suppressed_secondary: int     # suppressed so no total minus its parts reveals a small cell
    rows_suppressed: int                 # events in suppressed cells
    totals_total: int                    # marginal totals (per date × service type, per date)
    totals_released: int
    totals_suppressed_primary: int
    totals_suppressed_secondary: int
    files: tuple[str, ...] = ()
    seconds: float = 0.0


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
            raise TypeError("Released is made only by transforms.aggregate.suppress")


def _mint(**fields) -> Released:
    _MINTING.active = True
    try:
        return Released(**fields)
    finally:
        _MINTING.active = False


def aggregate_day(analytics_path: str, policy: Policy, work_dir: Path, out_dir: Path) -> AggregateResult:
    """Aggregate the analytics rows at `analytics_path`, suppress, and write `out_dir/event_date=…/`."""
    started = time.monotonic()
    work_dir = Path(work_dir)
    lake_mod.remove_tree(work_dir / "aggregate_stage")
    con = lake_mod.connect(work_dir / "tmp")
    con.execute("SET preserve_insertion_order = false")   # every output is ordered explicitly
    try:
        rows_in = build_groups(con, analytics_path)
        released = suppress(con, policy.k_anonymity, work_dir / "aggregate_stage")
    finally:
        con.close()
        lake_mod.remove_tree(work_dir / "tmp")
    files = write_released(released, Path(out_dir))
    lake_mod.remove_tree(work_dir / "aggregate_stage")
    return AggregateResult(
        k=released.k, clause=policy.analytics_clause,
        event_dates=tuple(p.event_date for p in released.partitions), rows_in=rows_in,
        groups_total=released.groups_total, groups_released=released.groups_released,
        groups_suppressed_primary=released.groups_suppressed_primary,
        groups_suppressed_secondary=released.groups_suppressed_secondary,
        rows_suppressed=released.rows_suppressed, totals_total=released.totals_total,
        totals_released=released.totals_released, totals_suppressed_primary=released.totals_suppressed_primary,
        totals_suppressed_secondary=released.totals_suppressed_secondary,
        files=files, seconds=round(time.monotonic() - started, 3))


def build_groups(con: duckdb.DuckDBPyConnection, analytics_path: str, *, exact_cell_keys: bool = False) -> int:
    """Tables `cells`, `totals` and `pairs` (cell × key id × subscriber) in `con`; returns the rows read.

    Sums need no subscribers, so they come from one grouping of the rows into cells; subscribers come
    from `pairs`, the distinct (cell, key id, subscriber) triples, held as 64-bit hashes: `ck` of the
    cell's keys, `dk` of its date and service type, `kh` of the key id, `sub` of the token. The hashes
    of cells, services and key ids are exact when no two share one (checked; otherwise, or with
    `exact_cell_keys`, they are the keys and ids themselves: slower, same result).

    A subscriber is held as hash(token): the token itself is not kept. Two tokens sharing a 64-bit
    hash would count once — fewer subscribers, so more suppression, never less.

    Tokens made with different keys (`hmac_key_id`; a day's late rows may come after a key rotation)
    cannot be matched, so one person may hold two tokens. Subscribers are then counted per key and the
    largest count is used: a lower bound of the people in the group, never more than there are.
    """
    cols = [d[0] for d in lake_mod.execute(
        con, "SELECT * FROM read_parquet($src, hive_partitioning = true) LIMIT 0", {"src": analytics_path}
    ).description]
    kid = KEY_ID_COLUMN if KEY_ID_COLUMN in cols else "CAST(NULL AS VARCHAR)"
    lake_mod.execute(con, f"""
        CREATE OR REPLACE TEMP VIEW analytics_rows AS
        SELECT event_date, event_hour, service_type, coalesce(area, $unknown) AS area, service_area,
               called_country_code, {kid} AS kid, origin_number, duration_s, data_volume_bytes, charged_amount
        FROM read_parquet($src, hive_partitioning = true)""".replace("$unknown", lake_mod.sql_literal(UNKNOWN_AREA))
        .replace("$src", lake_mod.sql_literal(analytics_path)), {})
    keys = ", ".join(("event_date", *CELL_KEYS))
    cell_key = f"struct_pack({keys})" if exact_cell_keys else f"hash({keys})"
    # The (date, service type) a cell counts towards, for the service totals' subscribers.
    service_key = "struct_pack(event_date, service_type)" if exact_cell_keys else "hash(event_date, service_type)"
    # Two key ids sharing a hash would pool their subscribers, so the exact path is taken then too.
    key_hash = "kid" if exact_cell_keys else "hash(kid)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cell_sums AS
        SELECT {cell_key} AS ck, {service_key} AS dk, *
        FROM (SELECT {keys}, count(*) AS events, coalesce(sum(duration_s), 0) AS duration_s,
                     coalesce(sum(data_volume_bytes), 0) AS data_volume_bytes,
                     coalesce(sum(charged_amount), 0) AS revenue
              FROM analytics_rows GROUP BY ALL)""")
    if not exact_cell_keys and (
            con.execute("SELECT count(DISTINCT ck) < count(*) OR count(DISTINCT dk)"
                        " < count(DISTINCT struct_pack(event_date, service_type)) FROM cell_sums").fetchone()[0]
            or con.execute("SELECT count(DISTINCT hash(kid)) < count(DISTINCT kid) FROM analytics_rows")
            .fetchone()[0]):
        return build_groups(con, analytics_path, exact_cell_keys=True)   # two cells, services or keys share a hash
    rows_in = con.execute("SELECT coalesce(sum(events), 0) FROM cell_sums").fetchone()[0]
    # Fixed-width columns: half the time of carrying the date, service and key id text along.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pairs AS
        SELECT DISTINCT {cell_key} AS ck, {service_key} AS dk, {key_hash} AS kh, hash(origin_number) AS sub
        FROM analytics_rows WHERE origin_number IS NOT NULL""")
    measures = """CAST(events AS BIGINT) AS events,
                  CAST(round(duration_s / 60.0, 2) AS DECIMAL(18, 2)) AS minutes,
                  CAST(data_volume_bytes AS BIGINT) AS data_volume_bytes,
                  CAST(revenue AS DECIMAL(18, 4)) AS revenue"""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cells AS
        SELECT row_number() OVER (ORDER BY {keys}) AS cell_id, ck, {keys},
               coalesce(n.subscribers, 0) AS subscribers, {measures}
        FROM cell_sums LEFT JOIN (SELECT ck, max(n) AS subscribers      -- one pair per subscriber
                                  FROM (SELECT ck, kh, count(*) AS n FROM pairs GROUP BY ck, kh)
                                  GROUP BY ck) n USING (ck)""")
    # Marginal totals over all rows (suppressed cells included: that is what makes differencing a risk).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE totals AS
        SELECT row_number() OVER (ORDER BY s.event_date, s.is_day DESC, s.service_type) AS total_id,
               s.event_date, s.service_type, s.is_day, coalesce(n.subscribers, 0) AS subscribers, {measures}
        FROM (SELECT event_date, service_type, grouping(service_type) = 1 AS is_day,
                     sum(events) AS events, sum(duration_s) AS duration_s,
                     sum(data_volume_bytes) AS data_volume_bytes, sum(revenue) AS revenue
              FROM cell_sums GROUP BY GROUPING SETS ((event_date, service_type), (event_date))) s
        LEFT JOIN (WITH people AS (SELECT event_date, service_type, kh, sub
                                   FROM (SELECT DISTINCT dk, kh, sub FROM pairs)
                                   JOIN (SELECT DISTINCT dk, event_date, service_type FROM cell_sums) USING (dk))
                   SELECT event_date, service_type, false AS is_day, max(n) AS subscribers
                   FROM (SELECT event_date, service_type, kh, count(*) AS n FROM people GROUP BY ALL) GROUP BY ALL
                   UNION ALL
                   SELECT event_date, NULL, true, max(n)
                   FROM (SELECT event_date, kh, count(DISTINCT sub) AS n FROM people GROUP BY ALL) GROUP BY ALL
                  ) n   -- a service may be NULL, and the day total's service always is
        ON n.event_date = s.event_date AND n.is_day = s.is_day AND n.service_type IS NOT DISTINCT FROM s.service_type""")
    return int(rows_in)


def suppress(con: duckdb.DuckDBPyConnection, k: int, stage_dir: Path) -> Released:
    """Decide what is released from `cells`/`totals`, stage it as Parquet, and return the `Released`."""
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    con.execute("DROP TABLE IF EXISTS small_pairs")   # made on demand by _union_size, for this k and these pairs
    cells = con.execute(
        "SELECT cell_id, CAST(event_date AS VARCHAR), service_type, subscribers, events FROM cells").fetchall()
    totals = con.execute(
        "SELECT total_id, CAST(event_date AS VARCHAR), service_type, is_day, subscribers FROM totals").fetchall()
    plan = _Plan(k, cells, totals, lambda ids: _union_size(con, k, ids))
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
            lake_mod.execute(con, f"COPY ({sql}) TO $dst (FORMAT parquet, COMPRESSION zstd)",
                             {"d": day, "dst": str(path)})
            digests.append((name, lake_mod.sha256_file(path)))
        partitions.append(ReleasedPartition(day, str(part / CELLS_FILE), str(part / BY_SERVICE_FILE),
                                            str(part / DAY_FILE), tuple(digests)))
    # The staged files are checked once more from disk before they can be handed out.
    for p in partitions:
        for path in (p.cells, p.by_service, p.day):
            low = lake_mod.execute(con, "SELECT min(subscribers) FROM read_parquet($p)", {"p": path}).fetchone()[0]
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
        lake_mod.execute(con, """CREATE TEMP TABLE small_pairs AS SELECT c.cell_id, p.kh, p.sub
                                 FROM pairs p JOIN cells c USING (ck) WHERE c.subscribers < $k""", {"k": k})
    n = lake_mod.execute(con, """
        SELECT max(n) FROM (SELECT kh, count(DISTINCT sub) AS n FROM small_pairs
                            WHERE cell_id IN (SELECT unnest($ids::BIGINT[])) GROUP BY kh)""",
                         {"ids": sorted(cell_ids)}).fetchone()[0]
    return int(n or 0)


class _Plan:
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

    def _hidden_under_day(self, day: str, services: list[tuple]) -> list[int]:
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
        while not self._covered(self._hidden_under_day(day, services)):
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
            if t not in self.total_reason and not self._covered(self._hidden_under_day(day, services)):
                raise AssertionError("a released day total reveals a suppressed cell")


def write_released(released: Released, out_dir: Path) -> tuple[str, ...]:
    """Write a `Released` (and nothing else) to `out_dir/event_date=…/`, one folder swap per date."""
    if not isinstance(released, Released):
        raise TypeError("write_released accepts only a Released made by suppress()")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for part in released.partitions:
        for name, digest in part.sha256:
            if lake_mod.sha256_file(Path(part.cells).parent / name) != digest:
                raise ValueError(f"staged aggregate {name} for {part.event_date} changed after suppression")
        final = out_dir / f"event_date={part.event_date}"
        tmp = out_dir / f".staging-{part.event_date}-{uuid.uuid4().hex}"
        old = out_dir / f".replaced-{part.event_date}-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            for src in (part.cells, part.by_service, part.day):
                dst = tmp / Path(src).name
                shutil.copyfile(src, dst)
                with open(dst, "rb") as fh:
                    os.fsync(fh.fileno())
            if final.exists():
                os.replace(final, old)
            os.replace(tmp, final)   # commit point: the date's three files appear together
        finally:
            lake_mod.remove_tree(tmp)
            lake_mod.remove_tree(old)
        written += [str(final / Path(src).name) for src in (part.cells, part.by_service, part.day)]
    return tuple(written)



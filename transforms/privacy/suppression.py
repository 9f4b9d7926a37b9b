"""Suppression: what of the release tables may be released, so no figure describes fewer than k people.

No released figure may describe fewer than k subscribers (k: the policy's `analytics.k_anonymity`, §3.3),
neither directly nor by differencing across the release tables (docs/design.md §4):

* primary suppression — a cell with fewer than k subscribers;
* cross-table (secondary) suppression — for every released cell and every chain of finer tables inside it
  (its child table, the child's child …, any of them skipped), what the cell hides from that chain — its rows
  in no released cell of the chain — must be nothing, or describe k subscribers or more (a union of
  the hidden cells' subscribers, never a sum). Its events, minutes and volume are derivable by subtraction,
  so a non-empty remainder under k is refused however it is made up. Otherwise the smallest released cell
  whose suppression adds to the remainder is suppressed too, or, failing that, the cell itself; repeated
  until nothing changes.
* `other` — the suppressed cells of a table inside a released parent cell are released together as one
  `other` row of the table: it is the parent minus the released children, derivable already, and the rule
  above makes it either empty or k subscribers or more.

Only `suppress` makes a `Released`; `write_released` accepts nothing else, so an unchecked table cannot
reach the zone (docs/design.md §4).
"""

from __future__ import annotations

import shutil
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from transforms.lake.commit import commit_folder, sha256_file
from transforms.lake.connection import execute
from transforms.policy import Policy
from transforms.policy.model import ReleaseTable

MEASURES = ("subscribers", "events", "minutes", "data_volume_bytes", "revenue")
OTHER = "other"               # the column that marks a table's `other` row (its own dimensions NULL)
PRIMARY, SECONDARY = "primary", "secondary"


@dataclass(frozen=True)
class TableRelease:
    """One release table of one event date: its cells and what of them was released (counts only)."""

    event_date: str
    table: str
    clause: str
    cells: int
    cells_released: int
    cells_suppressed_primary: int          # fewer than k subscribers
    cells_suppressed_secondary: int        # suppressed so no released cell minus finer released cells reveals one
    other_cells_released: int              # `other` rows: a released parent's suppressed cells together
    events: int
    events_released: int                   # events in released cells (`other` rows not counted)

    @property
    def share_events_released(self) -> float:
        return self.events_released / self.events if self.events else 1.0


@dataclass(frozen=True)
class ReleasedPartition:
    """The staged files of one event date (one per release table), with their sha256 so the writer can tell
    they are unchanged."""

    event_date: str
    files: tuple[str, ...]
    sha256: tuple[tuple[str, str], ...]   # (file name, digest)


_MINTING = threading.local()


@dataclass(frozen=True)
class Released:
    """Release tables that passed suppression, staged and ready to write. Only `suppress` makes one."""

    k: int
    partitions: tuple[ReleasedPartition, ...]
    tables: tuple[TableRelease, ...]

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


@dataclass(frozen=True)
class Cell:
    """One cell of one release table, as the decision sees it."""

    id: int
    table: str
    event_date: str
    subscribers: int
    events: int
    parent: int | None


def suppress(con: duckdb.DuckDBPyConnection, policy: Policy, stage_dir: Path) -> Released:
    """Decide what of `cells` (see `aggregates.build_cells`) is released under the policy's k and release
    tables, stage it as Parquet, and return the `Released`."""
    k, tables = policy.k_anonymity, policy.release_tables
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    names = [t.name for t in tables]
    cells = [Cell(i, names[t], str(d), s, e, p) for i, t, d, s, e, p in con.execute(
        "SELECT cell_id, table_no, CAST(event_date AS VARCHAR), subscribers, events, parent_id FROM cells"
        " ORDER BY cell_id").fetchall()]
    plan = ReleaseDecision(k, tables, cells, SmallCellSubscribers(con, k))
    plan.run()
    plan.verify()

    stage_dir.mkdir(parents=True, exist_ok=True)
    con.execute("CREATE OR REPLACE TEMP TABLE cell_out AS SELECT unnest($ids::BIGINT[]) AS cell_id",
                {"ids": sorted(plan.released())})
    others = plan.other_groups()
    con.execute("CREATE OR REPLACE TEMP TABLE other_members AS SELECT unnest($p::BIGINT[]) AS parent_id,"
                " unnest($c::BIGINT[]) AS cell_id",
                {"p": [p for p, members in others.items() for _ in members],
                 "c": [c for members in others.values() for c in members]})
    _other_rows(con)
    partitions = []
    for day in sorted({c.event_date for c in cells}):
        part = stage_dir / f"event_date={day}"
        part.mkdir(parents=True, exist_ok=True)
        digests, files = [], []
        for no, table in enumerate(tables):
            cols = policy.release_columns(table.name)
            path = part / f"{table.name}.parquet"
            measures = ", ".join(MEASURES)
            execute(con, f"""COPY (
                SELECT {', '.join(cols)}, false AS {OTHER}, {measures}
                FROM cells JOIN cell_out USING (cell_id) WHERE table_no = $no AND event_date = CAST($d AS DATE)
                UNION ALL
                SELECT {', '.join(f'p.{c}' for c in cols)}, true, {', '.join(f'o.{m}' for m in MEASURES)}
                FROM other_cells o JOIN cells p ON p.cell_id = o.parent_id
                WHERE o.table_no = $no AND p.event_date = CAST($d AS DATE)
                ORDER BY ALL) TO $dst (FORMAT parquet, COMPRESSION zstd)""",
                    {"no": no, "d": day, "dst": str(path)})
            digests.append((path.name, sha256_file(path)))
            files.append(str(path))
        partitions.append(ReleasedPartition(day, tuple(files), tuple(digests)))
    # The staged files are checked once more from disk before they can be handed out.
    for p in partitions:
        for path in p.files:
            low = execute(con, "SELECT min(subscribers) FROM read_parquet($p)", {"p": path}).fetchone()[0]
            if low is not None and low < k:
                raise AssertionError("a staged aggregate row has fewer than k subscribers")  # never expected
    return _mint(k=k, partitions=tuple(partitions), tables=plan.table_releases(tables, others))


def _other_rows(con: duckdb.DuckDBPyConnection) -> None:
    """`other_cells`: per released parent cell and child table, the sums and subscribers of its suppressed
    child cells together (`other_members`), from the atoms and pairs (a union of subscribers, per key id)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE other_atoms AS
        SELECT m.parent_id, c.table_no, ac.ak
        FROM other_members m JOIN cells c USING (cell_id) JOIN atom_cells ac USING (cell_id)""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE other_cells AS
        SELECT s.*, coalesce(n.subscribers, 0) AS subscribers
        FROM (SELECT parent_id, table_no, sum(events) AS events,
                     CAST(round(sum(duration_s) / 60.0, 2) AS DECIMAL(18, 2)) AS minutes,
                     CAST(sum(data_volume_bytes) AS BIGINT) AS data_volume_bytes,
                     CAST(sum(revenue) AS DECIMAL(18, 4)) AS revenue
              FROM other_atoms JOIN atoms USING (ak) GROUP BY ALL) s
        LEFT JOIN (SELECT parent_id, table_no, max(n) AS subscribers
                   FROM (SELECT parent_id, table_no, kh, count(*) AS n
                         FROM (SELECT DISTINCT o.parent_id, o.table_no, p.kh, p.sub
                               FROM pairs p JOIN other_atoms o USING (ak))
                         GROUP BY ALL)
                   GROUP BY ALL) n USING (parent_id, table_no)""")


class SmallCellSubscribers:
    """Distinct subscribers of several cells under k together (a union, not a sum), counted per key id.

    Tokens made with different keys cannot be matched (see build_cells), so the largest per-key count is
    used: a lower bound of the people behind the cells. The first call reads the (hashed) subscribers of all
    cells under k — fewer than k per key each, so at most k × key ids × cells — and every later union is
    counted from those in memory.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, k: int):
        self.con, self.k, self.members = con, k, None

    def __call__(self, cell_ids) -> int:
        if self.members is None:
            self.members = {}
            rows = execute(self.con, """
                SELECT c.cell_id, p.kh, list(DISTINCT p.sub)
                FROM cells c JOIN atom_cells ac USING (cell_id) JOIN pairs p USING (ak)
                WHERE c.subscribers < $k GROUP BY ALL""", {"k": self.k}).fetchall()
            for cell, kh, subs in rows:
                self.members.setdefault(cell, {})[kh] = subs
        union: dict = {}
        for c in cell_ids:
            for kh, subs in self.members.get(c, {}).items():
                union.setdefault(kh, set()).update(subs)
        return max((len(s) for s in union.values()), default=0)


def table_chains(tables: Sequence[ReleaseTable]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Per table, every chain of finer tables inside its cells: sequences of descendants, each inside the one
    before (a child, a grandchild …; levels may be skipped — an attacker may subtract any of them)."""
    parent = {t.name: t.within for t in tables}

    def descendants(name: str) -> list[str]:
        out = []
        for t in tables:
            up = parent[t.name]
            while up is not None and up != name:
                up = parent[up]
            if up == name:
                out.append(t.name)
        return out

    def chains(name: str) -> list[tuple[str, ...]]:
        return [c for d in descendants(name) for c in [(d,), *((d, *rest) for rest in chains(d))]]

    return {t.name: tuple(chains(t.name)) for t in tables}


class ReleaseDecision:
    """The release decision for every cell of every table; plain Python over the (small) cell list."""

    def __init__(self, k: int, tables: Sequence[ReleaseTable], cells: Sequence[Cell],
                 union_size: Callable[[frozenset[int]], int]):
        self.k, self.union_size, self._unions = k, union_size, {}
        self.tables = tuple(tables)
        self.chains = table_chains(tables)
        self.cells = {c.id: c for c in cells}
        # below[cell][table]: the cells of `table` inside `cell` (any depth)
        self.below: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for c in cells:
            up = c.parent
            while up is not None:
                self.below[up][c.table].append(c.id)
                up = self.cells[up].parent
        self.reason = {c.id: PRIMARY for c in cells if c.subscribers < k}

    def released(self) -> set[int]:
        return set(self.cells) - set(self.reason)

    def _size(self, c: int) -> tuple:
        cell = self.cells[c]
        return cell.subscribers, cell.events, c

    def hidden(self, cell: int, chain: tuple[str, ...]) -> tuple[list[int], list[int]]:
        """What `cell` hides from `chain`: the suppressed cells (of any level) whose rows are in no released
        cell of the chain, and the released cells on the border (every chain cell between them and `cell`
        suppressed), which could be suppressed to add to it."""
        pieces, border = [], []
        rest = chain[1:]
        for c in self.below[cell][chain[0]]:
            if c not in self.reason:
                border.append(c)
            elif not any(x not in self.reason for t in rest for x in self.below[c][t]):
                pieces.append(c)        # nothing released below it: all its rows are hidden
            else:
                p, b = self.hidden(c, rest)
                pieces += p
                border += b
        return pieces, border

    def _covered(self, pieces: list[int]) -> bool:
        """Nothing hidden, or the hidden cells' subscribers together (a union) are k or more."""
        if not pieces:
            return True
        subs = [self.cells[c].subscribers for c in pieces]
        if max(subs) >= self.k:
            return True
        if sum(subs) < self.k:
            return False
        ids = frozenset(pieces)
        if ids not in self._unions:     # rare (most hidden sets are settled above), and it asks the database
            self._unions[ids] = self.union_size(ids)
        return self._unions[ids] >= self.k

    def _adds(self, c: int, chain: tuple[str, ...]) -> bool:
        """Suppressing border cell `c` adds rows to what its container hides from `chain`."""
        rest = chain[chain.index(self.cells[c].table) + 1:]
        return not rest or bool(self.hidden(c, rest)[0])

    def settle_differencing(self, cell: int, chain: tuple[str, ...]) -> bool:
        """Suppress until what released `cell` hides from `chain` is nothing or k subscribers or more: the
        smallest border cell that adds to it first, or the cell itself. True when anything was suppressed."""
        changed = False
        while True:
            pieces, border = self.hidden(cell, chain)
            if self._covered(pieces):
                return changed
            victim = min((c for c in border if self._adds(c, chain)), key=self._size, default=None)
            if victim is None:
                victim = min(border, key=self._size, default=cell)   # its own released children shelter it
            self.reason[victim] = SECONDARY
            changed = True
            if victim == cell:
                return True

    def run(self) -> None:
        by_table: dict[str, list[int]] = defaultdict(list)
        for c in sorted(self.cells):
            by_table[self.cells[c].table].append(c)
        changed = True
        while changed:          # only ever suppresses more, so this ends
            changed = False
            for table in self.tables:
                for cell in by_table[table.name]:
                    for chain in self.chains[table.name]:
                        if cell in self.reason:
                            break
                        changed |= self.settle_differencing(cell, chain)

    def verify(self) -> None:
        """The release rule, checked on the final decision (independent of how it was reached)."""
        if any(self.cells[c].subscribers < self.k for c in self.released()):
            raise AssertionError("a released cell has fewer than k subscribers")   # never expected
        for c in self.released():
            for chain in self.chains[self.cells[c].table]:
                if not self._covered(self.hidden(c, chain)[0]):
                    raise AssertionError("a released cell minus finer released cells reveals fewer than k")

    def other_groups(self) -> dict[int, list[int]]:
        """Per released parent cell: its child tables' suppressed cells inside it (those of one child table make
        one `other` row of that table)."""
        groups: dict[int, list[int]] = {}
        for parent in sorted(self.released()):
            for table, members in self.below[parent].items():
                if self.tables_by_name[table].within != self.cells[parent].table:
                    continue
                hidden = sorted(c for c in members if c in self.reason)
                # Released where it passes: after `run`, always (what a released parent hides from its child
                # table is nothing or k subscribers or more).
                if hidden and self._covered(hidden):
                    groups.setdefault(parent, []).extend(hidden)
        return groups

    @property
    def tables_by_name(self) -> dict[str, ReleaseTable]:
        return {t.name: t for t in self.tables}

    def table_releases(self, tables: Sequence[ReleaseTable], others: dict[int, list[int]]) -> tuple[TableRelease, ...]:
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)       # (date, table) -> cell ids
        for c, cell in self.cells.items():
            groups[cell.event_date, cell.table].append(c)
        other = defaultdict(set)                                           # (date, table) -> parents with `other`
        for parent, members in others.items():
            for m in members:
                other[self.cells[m].event_date, self.cells[m].table].add(parent)
        out = []
        for day in sorted({c.event_date for c in self.cells.values()}):
            for t in tables:
                ids = groups[day, t.name]
                out.append(TableRelease(
                    event_date=day, table=t.name, clause=t.clause, cells=len(ids),
                    cells_released=sum(c not in self.reason for c in ids),
                    cells_suppressed_primary=sum(self.reason.get(c) == PRIMARY for c in ids),
                    cells_suppressed_secondary=sum(self.reason.get(c) == SECONDARY for c in ids),
                    other_cells_released=len(other[day, t.name]),
                    events=sum(self.cells[c].events for c in ids),
                    events_released=sum(self.cells[c].events for c in ids if c not in self.reason)))
        return tuple(out)


def write_released(released: Released, out_dir: Path) -> tuple[str, ...]:
    """Write a `Released` (and nothing else) to `out_dir/event_date=…/`, one folder swap per date."""
    if not isinstance(released, Released):
        raise TypeError("write_released accepts only a Released made by suppress()")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for part in released.partitions:
        for name, digest in part.sha256:
            if sha256_file(Path(part.files[0]).parent / name) != digest:
                raise ValueError(f"staged aggregate {name} for {part.event_date} changed after suppression")
        final = out_dir / f"event_date={part.event_date}"
        # Commit point: the date's files appear together.
        commit_folder(final, lambda stage, sources=part.files: [shutil.copyfile(src, stage / Path(src).name)
                                                                for src in sources])
        written += [str(final / Path(src).name) for src in part.files]
    return tuple(written)

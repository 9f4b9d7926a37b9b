"""Analytics zone: a file's billing rows, pseudonymized and generalized (policy §3.3; docs/design.md §4).

Further use of traffic data is allowed only pseudonymized or aggregated. For each file whose rows reached
billing: generalize (`generalize`: hour, TAC, area, drops), then replace direct identifiers with keyed
tokens (`tokens`), then commit to `analytics/event_date=…/part-<sha>.parquet`. Every file there carries
the HMAC key id it was made with. Each analytics part's distinct tokens are then committed as the subject index
of that part and of the billing part it was made from (`subject_index`): the same identifiers, hashed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from transforms.lake import Lake
from transforms.lake.commit import remove_tree
from transforms.lake.connection import connect, execute
from transforms.lake.partitions import ZoneWrite, commit_partitions
from transforms.policy import Policy
from transforms.privacy.generalize import ColumnTreatment, define_generalized, treatments
from transforms.privacy.keys import KeyRing
from transforms.privacy.restricted import RestrictedFilter
from transforms.privacy.subject_index import commit_index, stage_day_indexes
from transforms.privacy.tokens import TokenPlan, plan_tokens


@dataclass(frozen=True)
class AnalyticsResult:
    """What the analytics step did with one file's billing rows."""

    rows: int
    key_id: str
    tokenized: dict[str, int]              # column -> distinct values tokenized
    treatments: tuple[ColumnTreatment, ...]
    zone: ZoneWrite
    rows_restricted: int = 0               # rows left out: their served subscriber's processing is restricted
    cells_blanked: int = 0                 # cells written NULL: a restricted subject as someone else's other party


def build_analytics(billing_files: list[str], lake: Lake, policy: Policy, keyring: KeyRing, work_dir: Path, *,
                    source_sha256: str, skip: RestrictedFilter | None = None) -> AnalyticsResult:
    """Pseudonymize and generalize one file's billing rows into the analytics zone.

    One pass: generalization is a view, tokens are looked up for its distinct identifiers, and
    each event date's rows are written once, straight into the zone's layout.
    """
    out, indexes = work_dir / "analytics_out", work_dir / "analytics_index"
    remove_tree(out)
    remove_tree(indexes)
    out.mkdir(parents=True)
    by_day: dict[str, list[str]] = {}
    for f in billing_files:   # billing/event_date=D/part-….parquet: the folder is the day
        by_day.setdefault(Path(f).parent.name, []).append(f)
    con = connect(work_dir / "tmp")
    # Row order means nothing in analytics; keeping it through the token joins only costs memory.
    con.execute("SET preserve_insertion_order = false")
    try:
        define_generalized(con, billing_files, policy)
        # The identifiers are read from the billing rows themselves: one lookup serves all of the file's days.
        tokens = plan_tokens(con, "generalized_billing", policy, keyring, spellings_by="event_date")
        rows = restricted = blanked = 0
        # Restricted subjects (policy §6.4; docs/design.md §12): their rows never reach the zone, and where they
        # are the other party of someone else's row, their token does not either.
        numbers = tuple(c for c in tokens.targets if policy.field(c).identifier == "msisdn")
        left_out = skip.predicate(con, "generalized_billing", {}, policy, keyring, numbers=numbers) if skip \
            else "false"
        if left_out != "false":
            restricted = con.execute(f"SELECT count(*) FROM generalized_billing WHERE {left_out}").fetchone()[0]
            blanked = _blank_restricted_parties(con, tokens, policy, left_out)
        for i, (folder, files) in enumerate(sorted(by_day.items())):
            # Each day reads its own files: a filter on event_date instead makes DuckDB expect ~1 row
            # and hash-build the joins on the big side (out of memory at 4.5M rows).
            define_generalized(con, files, policy, view=f"day_{i}", leave_out=left_out)
            dst = out / folder / "part.parquet"
            # LZ4 and v2 pages: the tokens do not compress, and zstd spent ~15% more time failing to.
            dst.parent.mkdir()
            rows += execute(con, f"""
                COPY (SELECT {tokens.select(exclude=("event_date",))} FROM day_{i} t{tokens.joins})
                TO $dst (FORMAT parquet, COMPRESSION lz4_raw, PARQUET_VERSION V2)""",
                            {**tokens.params, "dst": str(dst)}).fetchone()[0]
            # The day's subject indexes from the tokens just used (one billing part a day: a part's index lists
            # its own rows' identifiers only). Not when restricted rows were left out: the billing part still
            # holds them, and an index without them would hide them from a search; without an index the part
            # is scanned whole.
            if len(files) == 1 and left_out == "false":
                stage_day_indexes(con, f"day_{i}", policy, tokens.targets, tokens.key_id, indexes / folder,
                                  date.fromisoformat(folder.split("=", 1)[1]))
    finally:
        con.close()
    zone = commit_partitions(out, lake, "analytics", source_sha256)
    remove_tree(out)
    # Each index after its part (`subject_index`): an index that exists was made from its part's rows.
    for rel in zone.files:
        staged = indexes / (lake.root / rel).parent.name
        if (staged / "analytics.tokens").exists():
            commit_index(staged / "analytics.tokens", lake.root / rel)
            commit_index(staged / "billing.tokens", Path(by_day[staged.name][0]))
    remove_tree(indexes)
    return AnalyticsResult(rows=rows, key_id=tokens.key_id, tokenized=dict(tokens.distinct_by_column),
                           treatments=treatments(policy), zone=zone, rows_restricted=restricted,
                           cells_blanked=blanked)


def _blank_restricted_parties(con, tokens: TokenPlan, policy: Policy, left_out: str) -> int:
    """A restricted subject who is the other party of a row that lands (its served subscriber is not restricted):
    their spellings' tokens in the lookup (`tokens`) become NULL, so every such cell is written NULL — no
    placeholder, for the reason a blanked erased subject is NULL (docs/design.md §12). Returns the cells so
    blanked in the rows that land (counts only). Set-based: one count, one update of the distinct spellings."""
    kinds = [(i, policy.field(c).identifier) for i, c in enumerate(tokens.targets)]
    cells = " + ".join(f"coalesce(CAST({c} AS VARCHAR) IN (SELECT raw FROM restricted_raw WHERE kind = '{k}'), false)"
                       f"::INT" for c, (_, k) in zip(tokens.targets, kinds))
    if not cells:
        return 0
    n = con.execute(f"SELECT coalesce(sum({cells}), 0) FROM generalized_billing WHERE NOT {left_out}").fetchone()[0]
    values = ", ".join(f"({i}, '{k}')" for i, k in kinds)
    con.execute(f"""UPDATE tokens SET token = NULL WHERE (col, raw) IN (
                        SELECT c.col, r.raw FROM restricted_raw r JOIN (VALUES {values}) c(col, kind) USING (kind))""")
    return int(n)


"""Generalization for the analytics zone (policy §3.3): coarser values, driven by the policy.

Each canonical column's `analytics` treatment in the policy file decides what
an analytics row holds instead of the billing value:

* ``keep``                — the value as billed (country codes, volumes, amounts …);
* ``tokenize``            — left as is here; the pseudonymize step replaces it by a keyed token;
* ``truncate_to_hour``    — a timestamp cut to the hour (`event_hour`);
* ``truncate_to_tac``     — an IMEI cut to its TAC, the first 8 digits: the device model, not the device;
* ``generalize_to_area``  — a cell replaced by its location area, or the region of a reference
  lookup, or 'unknown' — never the cell itself;
* ``drop``                — not in analytics at all.

No branch here names a column: adding a column to the policy with a
treatment is enough. `treatments` tells the audit what became of each column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transforms import lake as lake_mod
from transforms.policy import Policy

UNKNOWN_AREA = "unknown"
# The cell's own location area, when the record carries it (DESIGN §1 item 9: cell_id and location_area):
# the first choice for a cell's area, before the reference lookup.
LOCATION_AREA = "location_area"


@dataclass(frozen=True)
class ColumnTreatment:
    """What one billing column becomes in analytics, and under which clause."""

    column: str
    treatment: str            # keep | tokenize | truncate_to_hour | truncate_to_tac | generalize_to_area | drop
    output_column: str | None  # None when dropped
    action: str               # kept | pseudonymized | generalized | dropped (the audit's vocabulary)
    clause: str


# treatment -> (output column name template, SQL over {c}, audit action). Output names are fixed per
# treatment so that downstream steps (aggregates) can rely on them.
_RULES = {
    "keep": ("{c}", "{c}", "kept"),
    "tokenize": ("{c}", "{c}", "pseudonymized"),
    "truncate_to_hour": ("event_hour", "date_trunc('hour', {c})", "generalized"),
    "truncate_to_tac": ("{c}_tac", "CASE WHEN regexp_matches({c}, '^[0-9]{{14,16}}$') THEN left({c}, 8) END",
                        "generalized"),
    "generalize_to_area": ("area", "coalesce(b.{area}, cells.region, $unknown)", "generalized"),
}


def treatments(policy: Policy) -> tuple[ColumnTreatment, ...]:
    """Per canonical column: its analytics treatment, output column and clause."""
    out = []
    for f in policy.fields:
        clause = f"{policy.analytics_clause}; {f.clause}"
        if f.analytics == "drop":
            out.append(ColumnTreatment(f.column, "drop", None, "dropped", clause))
            continue
        name, _, action = _RULES[f.analytics]
        out.append(ColumnTreatment(f.column, f.analytics, name.format(c=f.column), action, clause))
    names = [t.output_column for t in out if t.output_column]
    if len(names) != len(set(names)):
        raise ValueError("two policy columns generalize to the same analytics column")
    return tuple(out)


def generalize_select(policy: Policy) -> str:
    """The SELECT list turning billing rows (alias-free, joined with `cells`) into analytics rows."""
    # No record_id: it names one billing row (md5 of file and row), so anyone reading billing could pair
    # numbers with tokens through it and rebuild the key's work. The file's sha256 is kept (lineage).
    exprs = ["event_date", "source_file_sha256"]
    for t, f in zip(treatments(policy), policy.fields, strict=True):
        if t.output_column is None:
            continue
        _, sql, _ = _RULES[t.treatment]
        exprs.append(f"{sql.format(c='b.' + f.column, area=LOCATION_AREA)} AS {t.output_column}")
    return ", ".join(exprs)


@dataclass(frozen=True)
class GeneralizeResult:
    rows: int
    output_path: str
    area_from_location_area: int
    area_from_lookup: int
    area_unknown: int


def define_generalized(con, billing_files: str | list[str], policy: Policy, *, cell_regions: str | None = None,
                       view: str = "generalized") -> None:
    """Create the view `view` (and `<view>_billing`, `<view>_area_sources`) of generalized rows over
    billing Parquet files (a glob or a list; hive layout).

    A view, so the analytics step can tokenize and write in the same pass. `cell_regions` is an
    optional CSV (cell_id, region) for cells whose record carries no location area; without it
    such rows get the area 'unknown'.
    """
    if cell_regions:
        lake_mod.execute(con, "CREATE OR REPLACE TEMP TABLE cells AS SELECT cell_id, region FROM read_csv($src,"
                              " header = true, columns = {'cell_id': 'VARCHAR', 'region': 'VARCHAR'})",
                         {"src": cell_regions})
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE cells (cell_id VARCHAR, region VARCHAR)")
    files = [billing_files] if isinstance(billing_files, str) else billing_files
    listed = "[" + ", ".join(lake_mod.sql_literal(f) for f in files) + "]"
    source = f"{view}_billing"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {source} AS SELECT * FROM read_parquet({listed},"
                " hive_partitioning = true)")
    # The billing column behind `area` is the one the policy generalizes to an area.
    area_source = next((f.column for f in policy.fields if f.analytics == "generalize_to_area"), None)
    join = f"LEFT JOIN cells ON cells.cell_id = b.{area_source}" if area_source else "LEFT JOIN cells ON false"
    # Views take no bound parameters: the one constant is written as a literal.
    select = generalize_select(policy).replace("$unknown", lake_mod.sql_literal(UNKNOWN_AREA))
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {select} FROM {source} b {join}")
    con.execute(f"""CREATE OR REPLACE TEMP VIEW {view}_area_sources AS
        SELECT CASE WHEN b.{LOCATION_AREA} IS NOT NULL THEN 'location_area'
                    WHEN cells.region IS NOT NULL THEN 'lookup' ELSE 'unknown' END AS source, count(*) AS n
        FROM {source} b {join} GROUP BY 1""")


def generalize_file(billing_files: str | list[str], policy: Policy, work_dir: Path, *,
                    cell_regions: str | None = None) -> GeneralizeResult:
    """Write the generalized rows of billing Parquet files to `work_dir/generalized.parquet`."""
    work_dir.mkdir(parents=True, exist_ok=True)
    out = work_dir / "generalized.parquet"
    con = lake_mod.connect(work_dir / "tmp")
    try:
        define_generalized(con, billing_files, policy, cell_regions=cell_regions)
        rows = lake_mod.execute(con, "COPY (SELECT * FROM generalized) TO $dst (FORMAT parquet, COMPRESSION zstd)",
                                {"dst": str(out)}).fetchone()[0]
        by_source = dict(con.execute("SELECT source, n FROM generalized_area_sources").fetchall())
    finally:
        con.close()
    return GeneralizeResult(rows, str(out), by_source.get("location_area", 0), by_source.get("lookup", 0),
                            by_source.get("unknown", 0))

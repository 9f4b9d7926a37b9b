"""Generalization for the analytics zone (policy §3.3): coarser values, driven by the policy.

Each canonical column's `analytics` treatment in the policy file decides what
an analytics row holds instead of the billing value:

* ``keep``                — the value as billed (country codes, volumes, amounts …);
* ``tokenize``            — left as is here; the pseudonymize step replaces it by a keyed token;
* ``truncate_to_hour``    — a timestamp cut to the hour (`event_hour`);
* ``truncate_to_tac``     — an IMEI cut to its TAC, the first 8 digits: the device model, not the device;
* ``generalize_to_area``  — a cell replaced by the location area its record carries, else 'unknown' —
  never the cell itself;
* ``drop``                — not in analytics at all.

No branch here names a column: adding a column to the policy with a
treatment is enough. `treatments` tells the audit what became of each column.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.lake.connection import sql_literal
from transforms.policy import Policy

UNKNOWN_AREA = "unknown"
# The cell's own location area, when the record carries it (policy §3.2 item 9: cell_id and location_area).
LOCATION_AREA = "location_area"


@dataclass(frozen=True)
class ColumnTreatment:
    """What one billing column becomes in analytics, and under which clause."""

    column: str
    treatment: str            # keep | tokenize | truncate_to_hour | truncate_to_tac | generalize_to_area | drop
    output_column: str | None  # None when dropped
    action: str               # kept | pseudonymized | generalized | dropped (the audit's vocabulary)
    clause: str


def area_sql(alias: str = "b", unknown: str = "$unknown") -> str:
    """The area a billing row (alias `alias`) is generalized to: its record's location area, else `unknown`
    (an SQL expression: `$unknown` bound, or a literal). Analytics and the marketing profiles share it."""
    return f"coalesce({alias}.{LOCATION_AREA}, {unknown})"


# treatment -> (output column name template, SQL over {c}, audit action). Output names are fixed per
# treatment so that downstream steps (aggregates) can rely on them.
_RULES = {
    "keep": ("{c}", "{c}", "kept"),
    "tokenize": ("{c}", "{c}", "pseudonymized"),
    "truncate_to_hour": ("event_hour", "date_trunc('hour', {c})", "generalized"),
    "truncate_to_tac": ("{c}_tac", "CASE WHEN regexp_matches({c}, '^[0-9]{{14,16}}$') THEN left({c}, 8) END",
                        "generalized"),
    "generalize_to_area": ("area", area_sql(), "generalized"),
}


def treatments(policy: Policy) -> tuple[ColumnTreatment, ...]:
    """Per canonical column: its analytics treatment, output column and clause."""
    out = []
    for f in policy.fields:
        clause = f"{policy.analytics_clause}; {f.clause}"
        if f.analytics == "drop":
            out.append(ColumnTreatment(column=f.column, treatment="drop", output_column=None, action="dropped",
                                       clause=clause))
            continue
        name, _, action = _RULES[f.analytics]
        out.append(ColumnTreatment(column=f.column, treatment=f.analytics, output_column=name.format(c=f.column),
                                   action=action, clause=clause))
    names = [t.output_column for t in out if t.output_column]
    if len(names) != len(set(names)):
        raise ValueError("two policy columns generalize to the same analytics column")
    return tuple(out)


def generalize_select(policy: Policy) -> str:
    """The SELECT list turning billing rows (alias `b`) into analytics rows."""
    # No record_id: it names one billing row (md5 of file and row), so anyone reading billing could pair
    # numbers with tokens through it and rebuild the key's work. The file's sha256 is kept (lineage).
    exprs = ["event_date", "source_file_sha256"]
    for t, f in zip(treatments(policy), policy.fields, strict=True):
        if t.output_column is None:
            continue
        _, sql, _ = _RULES[t.treatment]
        exprs.append(f"{sql.format(c='b.' + f.column)} AS {t.output_column}")
    return ", ".join(exprs)


def define_generalized(con, billing_files: list[str], policy: Policy, *, view: str = "generalized",
                       leave_out: str = "false") -> None:
    """Create the views `<view>_billing` (the billing rows of `billing_files`, hive layout; without those for
    which the SQL `leave_out` is true) and `view` (those rows generalized). Views, so the analytics step can
    tokenize and write in the same pass.
    """
    listed = "[" + ", ".join(sql_literal(f) for f in billing_files) + "]"
    where = "" if leave_out == "false" else f" WHERE NOT ({leave_out})"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view}_billing AS SELECT * FROM read_parquet({listed},"
                f" hive_partitioning = true){where}")
    # Views take no bound parameters: the one constant is written as a literal.
    select = generalize_select(policy).replace("$unknown", sql_literal(UNKNOWN_AREA))
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {select} FROM {view}_billing b")

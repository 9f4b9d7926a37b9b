"""Roaming fair use, part 1: each month's per-subscriber presence and consumption (docs/design.md §5).

Policy §3.2 ¶4 keeps aggregated traffic data, roaming included, to establish a subscriber's predominant
domestic presence or use (the legal basis is the policy's `roaming.legal_basis`). For each affected
calendar month, the whole month is recomputed from the billing partitions whose event date lies in it and
written to ``roaming/month=YYYY-MM/part.parquet`` (one folder swap per month), one row per
(hmac_key_id, subscriber_token). Rules:

* The served subscriber is the IMSI (always the served party's), stored only as its keyed token
  (``privacy.tokens.plan_tokens``, kind ``imsi``: the same token the analytics zone holds). Rows without
  an IMSI (e.g. PBX legs) are counted, not attributed.
* The visited network is where the served subscriber was (``steps.billing.served_party_sql``: the
  termination network of a received event, else the origin network). Its MCC (first three digits) is
  looked up in the policy's ``roaming.reference_table``: home / eu_eea / rest_of_world. An MCC that is
  not listed is rest_of_world — never home, never regulated roaming. With no network, ``service_area``
  decides: 'home' is home, 'roaming' rest_of_world (abroad, not shown to be in the EU/EEA). With neither,
  the row is unclassified and counted.
* Purchases (service_type 'purchase') are neither a log-on to a network nor a regulated roaming service:
  they count for nothing here.
* Days are event dates (UTC, the billing partition). Each active day counts once, with precedence
  home > eu_eea > rest_of_world: a day with any home event is a domestic day (a day logged on to the
  domestic network counts as domestic presence) and not also a roaming day; a day with EU/EEA and other
  roaming only is an EU/EEA roaming day. So days_active = days_home + days_eu_roaming + days_other_roaming.
* Consumption, at home and roaming in the EU/EEA (regulated roaming; calls made and received, SMS sent,
  data including MMS): voice minutes out (call, outgoing) and in (call, incoming — a forwarded leg is not
  a call the subscriber took), SMS out (count), data bytes (data and MMS volume). Consumption outside the
  EU/EEA is not regulated roaming and is not kept.

Tokens made with different HMAC keys cannot be matched: ``build_months`` always tokenizes with the current
key, so after a rotation a subscriber's history restarts under the new key unless the earlier months are
rebuilt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from transforms.lake import Lake
from transforms.lake.commit import commit_folder, remove_tree
from transforms.lake.connection import connect, execute, in_pass, pass_count
from transforms.policy import Policy
from transforms.privacy.keys import KeyRing
from transforms.privacy.tokens import KEY_ID_COLUMN, plan_tokens
from transforms.roaming.periods import check_month
from transforms.roaming.schema import MONTH_COLUMNS, MONTH_FILE, NETWORK_ZONES
from transforms.privacy.restricted import ROAMING, Restricted
from transforms.steps.billing import restricted_filter, served_party_sql


@dataclass(frozen=True)
class RoamingMonth:
    """One month rebuilt from billing: counts and the file written (no values)."""

    month: str
    billing_partitions: int         # event-date folders read
    rows_read: int
    rows_counted: int               # rows that made presence or consumption
    rows_without_imsi: int
    rows_unclassified: int          # with an IMSI but no network and no service area
    rows_purchase: int              # purchases: neither presence nor regulated consumption
    subscribers: int
    path: str


@dataclass(frozen=True)
class RoamingMonthsResult:
    """What ``build_months`` wrote, for the audit step."""

    clause: str
    key_id: str
    reference_table: str
    months: tuple[RoamingMonth, ...]
    months_without_billing: tuple[str, ...]   # asked for, no billing partition: left as they were
    seconds: float
    rows_restricted: int = 0                  # rows left out: their served subscriber's processing is restricted


def billing_files_of_month(lake: Lake, month: str) -> list[Path]:
    """Part files of the billing partitions whose event date is in `month` (only those are read)."""
    check_month(month)
    return sorted(p for d in lake.zone("billing").glob(f"event_date={month}-*") if d.is_dir()
                  for p in d.glob("*.parquet"))


def _load_zones(con: duckdb.DuckDBPyConnection, policy: Policy) -> None:
    """`roaming_zones` (mcc, zone) from the policy's reference table, checked."""
    execute(con, """
        CREATE OR REPLACE TEMP TABLE roaming_zones AS
        SELECT mcc, zone FROM read_csv($path, header = true, all_varchar = true)""",
            {"path": str(policy.roaming.reference_table)})
    bad = con.execute("SELECT count(*) FILTER (WHERE NOT list_contains($zones, zone)"
                      " OR NOT regexp_full_match(mcc, '[0-9]{3}')), count(*) - count(DISTINCT mcc)"
                      " FROM roaming_zones", {"zones": list(NETWORK_ZONES)}).fetchone()
    if bad[0] or bad[1]:
        raise ValueError(f"{policy.roaming.reference_table}: {bad[0]} row(s) with a bad MCC or zone,"
                         f" {bad[1]} MCC(s) listed twice")


# Per (IMSI, day): what the day counts as and what was consumed where. Parameter: $files (one day's). `{in_pass}`
# keeps one pass's subscribers: by the hash of the grouped IMSI itself, so a subscriber's day (and the rows without
# an IMSI) is in one pass.
_DAILY_SQL = """
WITH ev AS (
    SELECT nullif(trim(imsi), '') AS imsi, event_date, service_type, direction, duration_s, data_volume_bytes,
           service_area,
           -- the visited network: where the served subscriber was when the event happened
           nullif(trim({visited}), '') AS visited
    FROM read_parquet($files, hive_partitioning = true, union_by_name = true)
    WHERE NOT {leave_out}
), classified AS (
    SELECT ev.*,
           CASE WHEN visited IS NOT NULL THEN coalesce(z.zone, 'rest_of_world')   -- unknown MCC: never home
                WHEN service_area = 'home' THEN 'home'
                WHEN service_area = 'roaming' THEN 'rest_of_world' END AS zone,
           service_type IS DISTINCT FROM 'purchase' AS counts
    FROM ev LEFT JOIN roaming_zones z ON z.mcc = left(ev.visited, 3)
)
SELECT imsi, event_date,
       count(*) AS rows_read,
       count(*) FILTER (WHERE zone IS NULL) AS rows_unclassified,
       count(*) FILTER (WHERE NOT counts) AS rows_purchase,
       count(*) FILTER (WHERE counts AND zone IS NOT NULL) AS rows_counted,
       coalesce(bool_or(counts AND zone = 'home'), false) AS on_home,
       coalesce(bool_or(counts AND zone = 'eu_eea'), false) AS on_eu,
       coalesce(bool_or(counts AND zone = 'rest_of_world'), false) AS on_other,
       {consumption}
FROM classified
WHERE {in_pass}
GROUP BY imsi, event_date
"""

_SERVICES = {   # measure -> (value summed, which rows)
    "voice_out_s": ("duration_s", "service_type = 'call' AND direction = 'outgoing'"),
    "voice_in_s": ("duration_s", "service_type = 'call' AND direction = 'incoming'"),
    "sms_out": ("1", "service_type = 'sms' AND direction = 'outgoing'"),
    "data_bytes": ("data_volume_bytes", "service_type IN ('data', 'mms')"),
}
_PLACES = {"home": "home", "eu_roaming": "eu_eea"}


# A day's (IMSI, day) groups are built in passes of at most this many subscribers: the groups' aggregates (~20 a
# subscriber) of 750k subscribers, a 30M-row night's day, went over the 768 MB ceiling and the statement took
# 17.2 s (33 CPU s) spilling; in two passes of ~375k, 9.2 s (benchmarks/README.md, "Stop 30").
IMSIS_PER_PASS = 400_000


def _passes(con: duckdb.DuckDBPyConnection, day_files: list[str]) -> int:
    """How many passes a day's subscribers need, from an estimate of their number (HyperLogLog over the IMSI
    column alone: 0.17 s for a 10M-row day)."""
    estimate = con.execute("SELECT approx_count_distinct(imsi) FROM read_parquet($files, union_by_name = true)",
                           {"files": day_files}).fetchone()[0]
    return pass_count(estimate, IMSIS_PER_PASS)


def _daily_sql() -> str:
    parts = [f"coalesce(sum({value}) FILTER (WHERE {rows} AND zone = '{zone}'), 0) AS {name}_{place}"
             for name, (value, rows) in _SERVICES.items() for place, zone in _PLACES.items()]
    return (_DAILY_SQL.replace("{consumption}", ",\n       ".join(parts))
            .replace("{visited}", served_party_sql("termination_network", "origin_network")))


def _monthly_sql() -> str:
    sums = []
    for place in _PLACES:
        sums += [f"CAST(round(sum(voice_out_s_{place}) / 60.0, 2) AS DECIMAL(18,2)) AS voice_out_min_{place}",
                 f"CAST(round(sum(voice_in_s_{place}) / 60.0, 2) AS DECIMAL(18,2)) AS voice_in_min_{place}",
                 f"CAST(sum(sms_out_{place}) AS BIGINT) AS sms_out_{place}",
                 f"CAST(sum(data_bytes_{place}) AS BIGINT) AS data_bytes_{place}"]
    return f"""
        CREATE OR REPLACE TEMP TABLE roaming_month AS
        SELECT imsi, $month AS month,
               -- one count per day, home first: a day with a home event is not also a roaming day
               count(*) FILTER (WHERE on_home) AS days_home,
               count(*) FILTER (WHERE NOT on_home AND on_eu) AS days_eu_roaming,
               count(*) FILTER (WHERE NOT on_home AND NOT on_eu AND on_other) AS days_other_roaming,
               count(*) AS days_active,
               min(event_date) AS first_event_date, max(event_date) AS last_event_date,
               {', '.join(sums)}
        FROM roaming_daily
        WHERE imsi IS NOT NULL AND (on_home OR on_eu OR on_other)
        GROUP BY imsi"""


def build_months(lake: Lake, policy: Policy, keyring: KeyRing, months: list[str],
                 work_dir: str | Path, restricted: Restricted = Restricted()) -> RoamingMonthsResult:
    """Rebuild `roaming/month=M/` for each month M from all of M's billing partitions.

    A whole month is recomputed each time, so a re-run gives the same file and a late file for an
    earlier month changes that month only. A month with no billing partition is left as it is.
    """
    started = time.monotonic()
    work_dir = Path(work_dir)
    out_root = lake.zone("roaming")
    out_root.mkdir(parents=True, exist_ok=True)
    written, without = [], []
    con = connect(work_dir / "roaming_tmp")
    con.execute("SET preserve_insertion_order = false")   # the output is ordered explicitly
    key_id = keyring.current.key_id
    skip = restricted_filter(restricted, ROAMING)
    left_out_rows = 0
    try:
        _load_zones(con, policy)
        daily_sql, monthly_sql = _daily_sql(), _monthly_sql()
        for month in sorted(set(map(check_month, months))):
            files = billing_files_of_month(lake, month)
            if not files:
                without.append(month)
                continue
            # One event date at a time: the grouping's memory follows a day's rows, not the month's.
            days: dict[Path, list[str]] = {}
            for f in files:
                days.setdefault(f.parent, []).append(str(f))
            con.execute("DROP TABLE IF EXISTS roaming_daily")
            # Restricted subjects (policy §6.4; docs/design.md §12): none of their rows is counted.
            month_rows = {"files": [str(f) for f in files]}
            leave_out = skip.predicate(con, "read_parquet($files, union_by_name = true)", month_rows, policy, keyring,
                                       parts=month_rows["files"])
            if leave_out != "false":
                left_out_rows += execute(con, f"SELECT count(*) FROM read_parquet($files, union_by_name = true)"
                                              f" WHERE {leave_out}", month_rows).fetchone()[0]
            first = True
            for day_files in days.values():
                # A day's subscribers in passes of at most IMSIS_PER_PASS (a subscriber's rows are in one pass).
                passes = _passes(con, day_files)
                for b in range(passes):
                    into = "CREATE TEMP TABLE roaming_daily AS" if first else "INSERT INTO roaming_daily"
                    execute(con, f"{into} {daily_sql.replace('{leave_out}', leave_out)}"
                                 .replace("{in_pass}", in_pass("hash(imsi)", b, passes)), {"files": day_files})
                    first = False
            execute(con, monthly_sql, {"month": month})
            counts = con.execute("""SELECT sum(rows_read), sum(rows_counted) FILTER (WHERE imsi IS NOT NULL),
                                           sum(rows_read) FILTER (WHERE imsi IS NULL),
                                           sum(rows_unclassified) FILTER (WHERE imsi IS NOT NULL),
                                           sum(rows_purchase) FILTER (WHERE imsi IS NOT NULL)
                                    FROM roaming_daily""").fetchone()
            # The IMSI becomes its token here; nothing raw leaves the connection.
            plan = plan_tokens(con, "roaming_month", policy, keyring)
            if plan.targets != ("imsi",):
                raise AssertionError(f"expected to tokenize the IMSI only, got {plan.targets}")
            cols = ", ".join(name for name, _ in MONTH_COLUMNS[1:])
            folder = out_root / f"month={month}"
            subscribers = commit_folder(folder, lambda stage: execute(con, f"""
                COPY (SELECT imsi AS subscriber_token, {cols}
                      FROM (SELECT {plan.select()} FROM roaming_month t{plan.joins})
                      ORDER BY {KEY_ID_COLUMN}, subscriber_token)
                TO $dst (FORMAT parquet, COMPRESSION zstd)""", {**plan.params, "dst": str(stage / MONTH_FILE)}
            ).fetchone()[0])
            read, counted, without_imsi, unclassified, purchase = (int(c or 0) for c in counts)
            written.append(RoamingMonth(
                month=month, billing_partitions=len(days), rows_read=read, rows_counted=counted,
                rows_without_imsi=without_imsi, rows_unclassified=unclassified, rows_purchase=purchase,
                subscribers=int(subscribers), path=str((folder / MONTH_FILE).relative_to(lake.root))))
            con.execute("DROP TABLE roaming_daily; DROP TABLE roaming_month")
    finally:
        con.close()
        remove_tree(work_dir / "roaming_tmp")
    return RoamingMonthsResult(policy.roaming.clause, key_id, str(policy.roaming.reference_table),
                               tuple(written), tuple(without), round(time.monotonic() - started, 3),
                               rows_restricted=left_out_rows)

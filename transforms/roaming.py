"""Step — roaming fair use: monthly per-subscriber aggregates and the window assessment (DESIGN §5).

Policy §3.2 ¶4 keeps aggregated traffic data, roaming included, to establish a
subscriber's predominant domestic presence or use (Reg. (EU) 531/2012, recast
as 2022/612; Impl. Reg. (EU) 2016/2286 Art. 4). Two functions:

``build_months`` — for each affected calendar month, the whole month is
recomputed from the billing partitions whose event date lies in it and written
to ``roaming/month=YYYY-MM/part.parquet`` (one folder swap per month), one row
per (hmac_key_id, subscriber_token). Rules:

* The served subscriber is the IMSI (always the served party's), stored only
  as its keyed token (``pseudonymize.plan_tokens``, kind ``imsi``: the same
  token the analytics zone holds). Rows without an IMSI (e.g. PBX legs) are
  counted, not attributed.
* The visited network is ``termination_network`` when the subscriber received
  the event (direction incoming / forwarded) and ``origin_network`` otherwise.
  Its MCC (first three digits) is looked up in the reference table
  (``policy.roaming.reference_table``): home / eu_eea / rest_of_world. An MCC
  that is not listed is rest_of_world — never home, never regulated roaming.
  With no network, ``service_area`` decides: 'home' is home, 'roaming'
  rest_of_world (abroad, but not shown to be in the EU/EEA). With neither, the
  row is unclassified and counted.
* Purchases (service_type 'purchase') are neither a log-on to a network nor a
  regulated roaming service: they count for nothing here.
* Days are event dates (UTC, the billing partition). Each active day counts
  once, with precedence home > eu_eea > rest_of_world: a day with any home
  event is a domestic day (Impl. Reg. 2016/2286 Art. 4: a day logged on to the
  domestic network counts as domestic presence) and not also a roaming day; a
  day with EU/EEA and other roaming only is an EU/EEA roaming day. So
  days_active = days_home + days_eu_roaming + days_other_roaming.
* Consumption, at home and roaming in the EU/EEA (regulated roaming; calls
  made and received, SMS sent, data including MMS per 2016/2286 recital 1):
  voice minutes out (call, outgoing) and in (call, incoming — a forwarded leg
  is not a call the subscriber took), SMS out (count), data bytes (data and
  MMS volume). Consumption outside the EU/EEA is not regulated roaming and is
  not kept.

``assess_window`` — over the ``observation_window_months`` months ending with
the month assessed (Art. 4: "at least four months"), per subscriber token:

* presence outweighs when days_eu_roaming > days_home (strictly: equal is not
  "outweighs");
* consumption outweighs when the roaming share, averaged over the services the
  subscriber used in the window (voice minutes in+out, SMS out, data bytes;
  share = EU roaming / (EU roaming + home)), is strictly above one half.
  Minutes, messages and bytes have no common unit and Art. 4 names all three
  regulated services, so each used service weighs the same;
* flagged = both outweigh (Art. 4: presence AND consumption); a subscriber
  whose first month in the roaming zone is later than the window's first month
  has insufficient history and is never flagged;
* long_inactivity (a separate indicator, Art. 4: "long inactivity of a given
  SIM card associated with use mostly, if not exclusively, while roaming"):
  enough history, days_eu_roaming > days_home, and a stretch of at least
  ``long_inactivity_days`` days without any event ending in the window (the
  gap before an active day, or from the last active day to the window's end).

Tokens made with different HMAC keys cannot be matched: each key id is
assessed on its own, so after a key rotation a subscriber's history restarts
under the new key unless the earlier months are rebuilt with it (``build_months``
always tokenizes with the current key).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from transforms import lake as lake_mod
from transforms.lake import Lake
from transforms.policy import Policy
from transforms.pseudonymize import KEY_ID_COLUMN, KeyRing, plan_tokens

ZONES = ("home", "eu_eea", "rest_of_world")
STATES = ("flagged", "not_flagged", "insufficient_history")
MONTH_FILE = "part.parquet"
STATUS_DIR = "status"
# Shares are compared with this tolerance so that a tie computed in floating point stays a tie.
_TIE = 1e-9
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

# Columns of roaming/month=YYYY-MM/part.parquet, in order (the month is also in the folder name).
MONTH_SCHEMA = (
    ("subscriber_token", "BLOB"), (KEY_ID_COLUMN, "VARCHAR"), ("month", "VARCHAR"),
    ("days_home", "BIGINT"), ("days_eu_roaming", "BIGINT"), ("days_other_roaming", "BIGINT"),
    ("days_active", "BIGINT"), ("first_event_date", "DATE"), ("last_event_date", "DATE"),
    ("voice_out_min_home", "DECIMAL(18,2)"), ("voice_in_min_home", "DECIMAL(18,2)"),
    ("sms_out_home", "BIGINT"), ("data_bytes_home", "BIGINT"),
    ("voice_out_min_eu_roaming", "DECIMAL(18,2)"), ("voice_in_min_eu_roaming", "DECIMAL(18,2)"),
    ("sms_out_eu_roaming", "BIGINT"), ("data_bytes_eu_roaming", "BIGINT"),
)


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


@dataclass(frozen=True)
class RoamingWindowResult:
    """The assessment of one window: counts per state and the status file (recorded in `roaming_status`)."""

    clause: str
    as_of_month: str
    window_months: tuple[str, ...]
    months_missing: tuple[str, ...]           # window months with no roaming partition
    key_ids: tuple[str, ...]
    subscribers: int
    flagged: int
    not_flagged: int
    insufficient_history: int
    long_inactivity: int
    path: str
    seconds: float

    @property
    def by_state(self) -> dict[str, int]:
        return {"flagged": self.flagged, "not_flagged": self.not_flagged,
                "insufficient_history": self.insufficient_history}


@dataclass(frozen=True)
class RoamingStatus:
    """One subscriber's assessment over one window, with the figures behind it."""

    hmac_key_id: str
    subscriber_token: bytes
    as_of_month: str
    window_start_month: str
    state: str
    first_month: str
    months_with_data: int
    days_home: int
    days_eu_roaming: int
    days_other_roaming: int
    voice_min_home: Decimal
    voice_min_eu_roaming: Decimal
    sms_out_home: int
    sms_out_eu_roaming: int
    data_bytes_home: int
    data_bytes_eu_roaming: int
    roaming_consumption_share: float | None
    presence_outweighs: bool
    consumption_outweighs: bool
    last_event_date: date
    longest_inactive_days: int
    long_inactivity: bool


# ------------------------------------------------------------------------------------------ months


def check_month(month: str) -> str:
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        raise ValueError(f"expected a month as 'YYYY-MM', got {month!r}")
    return month


def shift_month(month: str, n: int) -> str:
    """`month` moved by `n` calendar months ('2026-01', -1 -> '2025-12')."""
    y, m = map(int, check_month(month).split("-"))
    i = y * 12 + m - 1 + n
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def window_months(as_of_month: str, length: int) -> tuple[str, ...]:
    """The `length` months ending with `as_of_month`, oldest first."""
    return tuple(shift_month(as_of_month, -k) for k in range(length - 1, -1, -1))


def affected_months(event_dates: Iterable[str | date]) -> list[str]:
    """The months to rebuild after a night wrote these billing event dates (sorted, distinct)."""
    return sorted({str(d)[:7] for d in event_dates})


def billing_files_of_month(lake: Lake, month: str) -> list[Path]:
    """Part files of the billing partitions whose event date is in `month` (only those are read)."""
    check_month(month)
    return sorted(p for d in lake.zone("billing").glob(f"event_date={month}-*") if d.is_dir()
                  for p in d.glob("*.parquet"))


def _load_zones(con: duckdb.DuckDBPyConnection, policy: Policy) -> None:
    lake_mod.execute(con, """
        CREATE OR REPLACE TEMP TABLE roaming_zones AS
        SELECT mcc, zone FROM read_csv($path, header = true, all_varchar = true)""",
                     {"path": str(policy.roaming.reference_table)})
    bad = con.execute("SELECT count(*) FILTER (WHERE zone NOT IN ('home', 'eu_eea', 'rest_of_world')"
                      " OR NOT regexp_full_match(mcc, '[0-9]{3}')), count(*) - count(DISTINCT mcc)"
                      " FROM roaming_zones").fetchone()
    if bad[0] or bad[1]:
        raise ValueError(f"{policy.roaming.reference_table}: {bad[0]} row(s) with a bad MCC or zone,"
                         f" {bad[1]} MCC(s) listed twice")


# Per (IMSI, day): what the day counts as and what was consumed where. Parameter: $files (one day's).
_DAILY_SQL = """
WITH ev AS (
    SELECT nullif(trim(imsi), '') AS imsi, event_date, service_type, direction, duration_s, data_volume_bytes,
           service_area,
           -- the visited network: where the served subscriber was when the event happened
           nullif(trim(CASE WHEN direction IN ('incoming', 'forwarded') THEN termination_network
                            ELSE origin_network END), '') AS visited
    FROM read_parquet($files, hive_partitioning = true, union_by_name = true)
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
GROUP BY imsi, event_date
"""

_SERVICES = {   # measure -> (value summed, which rows)
    "voice_out_s": ("duration_s", "service_type = 'call' AND direction = 'outgoing'"),
    "voice_in_s": ("duration_s", "service_type = 'call' AND direction = 'incoming'"),
    "sms_out": ("1", "service_type = 'sms' AND direction = 'outgoing'"),
    "data_bytes": ("data_volume_bytes", "service_type IN ('data', 'mms')"),
}
_PLACES = {"home": "home", "eu_roaming": "eu_eea"}


def _daily_sql() -> str:
    parts = [f"coalesce(sum({value}) FILTER (WHERE {rows} AND zone = '{zone}'), 0) AS {name}_{place}"
             for name, (value, rows) in _SERVICES.items() for place, zone in _PLACES.items()]
    return _DAILY_SQL.replace("{consumption}", ",\n       ".join(parts))


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
                 work_dir: str | Path) -> RoamingMonthsResult:
    """Rebuild `roaming/month=M/` for each month M from all of M's billing partitions.

    A whole month is recomputed each time, so a re-run gives the same file and a late file for an
    earlier month changes that month only. A month with no billing partition is left as it is.
    """
    started = time.monotonic()
    work_dir = Path(work_dir)
    out_root = lake.zone("roaming")
    out_root.mkdir(parents=True, exist_ok=True)
    written, without = [], []
    con = lake_mod.connect(work_dir / "roaming_tmp")
    con.execute("SET preserve_insertion_order = false")   # the output is ordered explicitly
    key_id = keyring.current.key_id
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
            for i, day_files in enumerate(days.values()):
                into = "INSERT INTO roaming_daily" if i else "CREATE TEMP TABLE roaming_daily AS"
                lake_mod.execute(con, f"{into} {daily_sql}", {"files": day_files})
            lake_mod.execute(con, monthly_sql, {"month": month})
            counts = con.execute("""SELECT sum(rows_read), sum(rows_counted) FILTER (WHERE imsi IS NOT NULL),
                                           sum(rows_read) FILTER (WHERE imsi IS NULL),
                                           sum(rows_unclassified) FILTER (WHERE imsi IS NOT NULL),
                                           sum(rows_purchase) FILTER (WHERE imsi IS NOT NULL)
                                    FROM roaming_daily""").fetchone()
            # The IMSI becomes its token here; nothing raw leaves the connection.
            plan = plan_tokens(con, "roaming_month", policy, keyring)
            if plan.targets != ("imsi",):
                raise AssertionError(f"expected to tokenize the IMSI only, got {plan.targets}")
            cols = ", ".join(name for name, _ in MONTH_SCHEMA[1:])
            path, subscribers = _commit_folder(con, out_root, f"month={month}", f"""
                SELECT imsi AS subscriber_token, {cols}
                FROM (SELECT {plan.select()} FROM roaming_month t{plan.joins})
                ORDER BY {KEY_ID_COLUMN}, subscriber_token""", plan.params)
            written.append(RoamingMonth(month, len(days), *(int(c or 0) for c in counts),
                                        subscribers, str(path.relative_to(lake.root))))
            con.execute("DROP TABLE roaming_daily; DROP TABLE roaming_month")
    finally:
        con.close()
        lake_mod.remove_tree(work_dir / "roaming_tmp")
    return RoamingMonthsResult(policy.roaming.clause, key_id, str(policy.roaming.reference_table),
                               tuple(written), tuple(without), round(time.monotonic() - started, 3))


def _commit_folder(con: duckdb.DuckDBPyConnection, out_root: Path, folder: str, select: str,
                   params: dict) -> tuple[Path, int]:
    """Write `select` as `out_root/folder/part.parquet`: staged beside it, swapped in with one rename."""
    final = out_root / folder
    stage = out_root / f".staging-{folder}-{uuid.uuid4().hex}"
    old = out_root / f".replaced-{folder}-{uuid.uuid4().hex}"
    stage.mkdir()
    try:
        dst = stage / MONTH_FILE
        rows = lake_mod.execute(con, f"COPY ({select}) TO $dst (FORMAT parquet, COMPRESSION zstd)",
                                {**params, "dst": str(dst)}).fetchone()[0]
        with open(dst, "rb") as fh:
            os.fsync(fh.fileno())
        if final.exists():
            os.replace(final, old)
        os.replace(stage, final)   # commit point: the new file appears whole, in place of the old
    finally:
        lake_mod.remove_tree(stage)
        lake_mod.remove_tree(old)
    return final / MONTH_FILE, int(rows)


# ------------------------------------------------------------------------------------------ window


def _status_sql() -> str:
    voice_home = "(voice_out_min_home + voice_in_min_home)"
    voice_eu = "(voice_out_min_eu_roaming + voice_in_min_eu_roaming)"
    pairs = ((f"sum({voice_eu})", f"sum({voice_home})"), ("sum(sms_out_eu_roaming)", "sum(sms_out_home)"),
             ("sum(data_bytes_eu_roaming)", "sum(data_bytes_home)"))
    return f"""
    CREATE OR REPLACE TEMP TABLE roaming_status AS
    WITH history AS (      -- months up to the month assessed, with the gap before each month's first event
        SELECT *, first_event_date - lag(last_event_date) OVER (
                      PARTITION BY {KEY_ID_COLUMN}, subscriber_token ORDER BY month) - 1 AS gap_before
        FROM roaming_months WHERE month <= $end
    ), firsts AS (
        SELECT {KEY_ID_COLUMN}, subscriber_token, min(month) AS first_month
        FROM history GROUP BY ALL
    ), win AS (
        SELECT {KEY_ID_COLUMN}, subscriber_token, count(*) AS months_with_data,
               CAST(sum(days_home) AS BIGINT) AS days_home, CAST(sum(days_eu_roaming) AS BIGINT) AS days_eu_roaming,
               CAST(sum(days_other_roaming) AS BIGINT) AS days_other_roaming,
               CAST(sum(days_active) AS BIGINT) AS days_active,
               CAST(sum({voice_home}) AS DECIMAL(18,2)) AS voice_min_home,
               CAST(sum({voice_eu}) AS DECIMAL(18,2)) AS voice_min_eu_roaming,
               CAST(sum(sms_out_home) AS BIGINT) AS sms_out_home,
               CAST(sum(sms_out_eu_roaming) AS BIGINT) AS sms_out_eu_roaming,
               CAST(sum(data_bytes_home) AS BIGINT) AS data_bytes_home,
               CAST(sum(data_bytes_eu_roaming) AS BIGINT) AS data_bytes_eu_roaming,
               -- mean over the services used in the window of each one's EU-roaming share
               ({' + '.join(f"coalesce(CAST({r} AS DOUBLE) / nullif({r} + {h}, 0), 0)" for r, h in pairs)})
                 / nullif({' + '.join(f"CAST({r} + {h} > 0 AS INTEGER)" for r, h in pairs)}, 0)
                 AS roaming_consumption_share,
               max(last_event_date) AS last_event_date,
               -- longest stretch without any event that ends inside the window (months with data only
               -- have events; a gap spans the months between two that do), or runs to the window's end
               greatest(coalesce(max(gap_before), 0), CAST($end_date AS DATE) - max(last_event_date))
                 AS longest_inactive_days
        FROM history WHERE month >= $start
        GROUP BY ALL
    )
    SELECT $end AS as_of_month, $start AS window_start_month, CAST($months AS INTEGER) AS window_months,
           w.{KEY_ID_COLUMN}, w.subscriber_token,
           CASE WHEN f.first_month > $start THEN 'insufficient_history'
                WHEN presence_outweighs AND consumption_outweighs THEN 'flagged'
                ELSE 'not_flagged' END AS state,
           f.first_month, w.* EXCLUDE ({KEY_ID_COLUMN}, subscriber_token, last_event_date, longest_inactive_days,
                                       presence_outweighs, consumption_outweighs),
           presence_outweighs, consumption_outweighs, w.last_event_date, w.longest_inactive_days,
           f.first_month <= $start AND days_eu_roaming > days_home
             AND longest_inactive_days >= $inactive_days AS long_inactivity
    FROM (SELECT *, days_eu_roaming > days_home AS presence_outweighs,
                 coalesce(roaming_consumption_share > 0.5 + $tie, false) AS consumption_outweighs
          FROM win) w
    JOIN firsts f USING ({KEY_ID_COLUMN}, subscriber_token)
    ORDER BY w.{KEY_ID_COLUMN}, w.subscriber_token"""


def month_files(lake: Lake, up_to: str | None = None) -> dict[str, Path]:
    """{month: file} of the roaming zone's month partitions (up to and including `up_to`)."""
    found = {}
    for d in lake.zone("roaming").glob("month=*"):
        month = d.name.split("=", 1)[1]
        if _MONTH.fullmatch(month) and (d / MONTH_FILE).is_file() and (up_to is None or month <= up_to):
            found[month] = d / MONTH_FILE
    return dict(sorted(found.items()))


def assess_window(lake: Lake, policy: Policy, as_of_month: str, work_dir: str | Path | None = None
                  ) -> RoamingWindowResult:
    """Assess every subscriber with data in the window ending with `as_of_month`; write
    `roaming/status/as_of=M/part.parquet` (one row per key id and token) and return the counts."""
    started = time.monotonic()
    rule = policy.roaming
    months = window_months(check_month(as_of_month), rule.observation_window_months)
    files = month_files(lake, up_to=as_of_month)
    y, m = map(int, shift_month(as_of_month, 1).split("-"))
    params = {"start": months[0], "end": as_of_month, "months": len(months), "tie": _TIE,
              "end_date": date.fromordinal(date(y, m, 1).toordinal() - 1),   # last day of the month assessed
              "inactive_days": rule.long_inactivity_days}
    tmp = Path(work_dir) / "roaming_status_tmp" if work_dir else None
    con = lake_mod.connect(tmp)
    con.execute("SET preserve_insertion_order = false")
    out_root = lake.zone("roaming") / STATUS_DIR
    out_root.mkdir(parents=True, exist_ok=True)
    try:
        con.execute("CREATE TEMP TABLE roaming_months ("
                    + ", ".join(f"{n} {t}" for n, t in MONTH_SCHEMA) + ")")
        if files:
            lake_mod.execute(con, "INSERT INTO roaming_months BY NAME SELECT * FROM read_parquet($files,"
                                  " hive_partitioning = false)", {"files": [str(f) for f in files.values()]})
        lake_mod.execute(con, _status_sql(), params)
        n, flagged, not_flagged, insufficient, inactive = con.execute(f"""
            SELECT count(*), count(*) FILTER (WHERE state = '{STATES[0]}'),
                   count(*) FILTER (WHERE state = '{STATES[1]}'), count(*) FILTER (WHERE state = '{STATES[2]}'),
                   count(*) FILTER (WHERE long_inactivity) FROM roaming_status""").fetchone()
        key_ids = tuple(k for (k,) in con.execute(
            f"SELECT DISTINCT {KEY_ID_COLUMN} FROM roaming_status ORDER BY 1").fetchall())
        path, _ = _commit_folder(con, out_root, f"as_of={as_of_month}", "SELECT * FROM roaming_status", {})
    finally:
        con.close()
        if tmp is not None:
            lake_mod.remove_tree(tmp)
    return RoamingWindowResult(
        clause=rule.clause, as_of_month=as_of_month, window_months=months,
        months_missing=tuple(m for m in months if m not in files), key_ids=key_ids,
        subscribers=int(n), flagged=int(flagged), not_flagged=int(not_flagged),
        insufficient_history=int(insufficient), long_inactivity=int(inactive),
        path=str(path.relative_to(lake.root)), seconds=round(time.monotonic() - started, 3))


def read_statuses(path: str | Path) -> list[RoamingStatus]:
    """The rows of one status file as `RoamingStatus` (small: one row per subscriber of a window)."""
    con = lake_mod.connect()
    try:
        names = [f for f in RoamingStatus.__dataclass_fields__]
        rows = lake_mod.execute(con, f"SELECT {', '.join(names)} FROM read_parquet($p, hive_partitioning = false)"
                                     f" ORDER BY {KEY_ID_COLUMN}, subscriber_token", {"p": str(path)}).fetchall()
    finally:
        con.close()
    return [RoamingStatus(**dict(zip(names, r))) for r in rows]

"""Roaming fair use, part 2: each subscriber assessed over the observation window (docs/design.md §5).

Over the policy's ``roaming.observation_window_months`` months ending with the month assessed, per
subscriber token (the rules' thresholds are the policy's ``roaming`` keys):

* presence outweighs when the EU/EEA roaming days' share of (roaming days + home days) is strictly above
  ``presence_share_above`` (a tie never outweighs);
* consumption outweighs when the roaming share, averaged over the services the subscriber used in the
  window (voice minutes in+out, SMS out, data bytes; share = EU roaming / (EU roaming + home)), is
  strictly above ``consumption_share_above``. Minutes, messages and bytes have no common unit and the
  regulation names all three regulated services, so each used service weighs the same;
* flagged = both outweigh (presence AND consumption); a subscriber whose first month in the roaming zone
  is later than the window's first month has insufficient history and is never flagged;
* long_inactivity (a separate indicator: a SIM used mainly while roaming and long inactive): enough
  history, presence outweighs, and a stretch of at least ``long_inactivity_days`` days without any
  event ending in the window (the gap before an active day, or from the last active day to the
  window's end).

Each HMAC key id is assessed on its own (tokens of different keys cannot be matched). The result goes to
``roaming/status/as_of=YYYY-MM/part.parquet``; a window with no subscriber writes no file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from transforms.lake import Lake
from transforms.lake.commit import commit_folder, remove_tree
from transforms.lake.connection import connect, execute
from transforms.policy import Policy
from transforms.privacy.tokens import KEY_ID_COLUMN
from transforms.roaming.periods import check_month, is_month, last_day, window_months
from transforms.roaming.schema import MONTH_COLUMNS, MONTH_FILE, STATES, STATUS_DIR

# Shares are compared with this tolerance so that a tie computed in floating point stays a tie.
_TIE = 1e-9


@dataclass(frozen=True)
class RoamingWindowResult:
    """The assessment of one window: counts per state and the status file (recorded in `roaming_runs`)."""

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
    path: str | None                          # relative to the lake; None: no subscriber, no file
    seconds: float

    @property
    def by_state(self) -> dict[str, int]:
        return {"flagged": self.flagged, "not_flagged": self.not_flagged,
                "insufficient_history": self.insufficient_history}


def _status_sql() -> str:
    voice_home = "(voice_out_min_home + voice_in_min_home)"
    voice_eu = "(voice_out_min_eu_roaming + voice_in_min_eu_roaming)"
    pairs = ((f"sum({voice_eu})", f"sum({voice_home})"), ("sum(sms_out_eu_roaming)", "sum(sms_out_home)"),
             ("sum(data_bytes_eu_roaming)", "sum(data_bytes_home)"))
    flagged, not_flagged, insufficient = STATES
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
           CASE WHEN f.first_month > $start THEN '{insufficient}'
                WHEN presence_outweighs AND consumption_outweighs THEN '{flagged}'
                ELSE '{not_flagged}' END AS state,
           f.first_month, w.* EXCLUDE ({KEY_ID_COLUMN}, subscriber_token, last_event_date, longest_inactive_days,
                                       presence_outweighs, consumption_outweighs),
           presence_outweighs, consumption_outweighs, w.last_event_date, w.longest_inactive_days,
           f.first_month <= $start AND presence_outweighs
             AND longest_inactive_days >= $inactive_days AS long_inactivity
    FROM (SELECT *,
                 -- share of roaming days among roaming and home days, strictly above the policy's share
                 days_eu_roaming > $presence_share * (days_eu_roaming + days_home) + $tie AS presence_outweighs,
                 coalesce(roaming_consumption_share > $consumption_share + $tie, false) AS consumption_outweighs
          FROM win) w
    JOIN firsts f USING ({KEY_ID_COLUMN}, subscriber_token)
    ORDER BY w.{KEY_ID_COLUMN}, w.subscriber_token"""


def month_files(lake: Lake, up_to: str | None = None) -> dict[str, Path]:
    """{month: file} of the roaming zone's month partitions (up to and including `up_to`)."""
    found = {}
    for d in lake.zone("roaming").glob("month=*"):
        month = d.name.split("=", 1)[1]
        if is_month(month) and (d / MONTH_FILE).is_file() and (up_to is None or month <= up_to):
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
    params = {"start": months[0], "end": as_of_month, "months": len(months), "tie": _TIE,
              "end_date": last_day(as_of_month), "inactive_days": rule.long_inactivity_days,
              "presence_share": rule.presence_share_above, "consumption_share": rule.consumption_share_above}
    tmp = Path(work_dir) / "roaming_status_tmp" if work_dir else None
    con = connect(tmp)
    con.execute("SET preserve_insertion_order = false")
    folder = lake.zone("roaming") / STATUS_DIR / f"as_of={as_of_month}"
    try:
        con.execute("CREATE TEMP TABLE roaming_months (" + ", ".join(f"{n} {t}" for n, t in MONTH_COLUMNS) + ")")
        if files:
            execute(con, "INSERT INTO roaming_months BY NAME SELECT * FROM read_parquet($files,"
                         " hive_partitioning = false)", {"files": [str(f) for f in files.values()]})
        execute(con, _status_sql(), params)
        n, flagged, not_flagged, insufficient, inactive = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE state = $f), count(*) FILTER (WHERE state = $n),"
            " count(*) FILTER (WHERE state = $i), count(*) FILTER (WHERE long_inactivity) FROM roaming_status",
            dict(zip(("f", "n", "i"), STATES))).fetchone()
        key_ids = tuple(k for (k,) in con.execute(
            f"SELECT DISTINCT {KEY_ID_COLUMN} FROM roaming_status ORDER BY 1").fetchall())
        if n:
            commit_folder(folder, lambda stage: con.execute(
                "COPY (SELECT * FROM roaming_status) TO $dst (FORMAT parquet, COMPRESSION zstd)",
                {"dst": str(stage / MONTH_FILE)}))
        else:
            remove_tree(folder)   # nobody to assess: no file (an empty one would hold nothing to sweep)
    finally:
        con.close()
        if tmp is not None:
            remove_tree(tmp)
    return RoamingWindowResult(
        clause=rule.clause, as_of_month=as_of_month, window_months=months,
        months_missing=tuple(m for m in months if m not in files), key_ids=key_ids,
        subscribers=int(n), flagged=int(flagged), not_flagged=int(not_flagged),
        insufficient_history=int(insufficient), long_inactivity=int(inactive),
        path=str((folder / MONTH_FILE).relative_to(lake.root)) if n else None,
        seconds=round(time.monotonic() - started, 3))

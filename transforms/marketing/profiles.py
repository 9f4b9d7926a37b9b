"""Marketing profiles, on consent only (policy §3.4 ¶5; docs/design.md §11).

For each event date asked for, the whole day is rebuilt from its billing rows (raw numbers, compared in
E.164 with the consent register) into ``marketing/event_date=D/part.parquet``, one row per subscriber
whose `consent.profiling_purpose` consent has stood without a break from the end of D to the end of the
night (`consents.spells`): a consent withdrawn since D covers none of D's processing any more, and "the
latest consent received counts" (§3.4 ¶3), whatever order the extracts landed in. A row holds:

* events, voice minutes, SMS and MMS counts and data volume (calls, SMS, MMS and data sessions of which
  the subscriber is the served party; purchases are not usage and count for nothing);
* `events_by_hour`: 24 counts, by the hour (UTC) the events started;
* `home_area`: the area (the analytics generalization of the cell, `privacy.generalize.area_sql`) where
  most of the day's events were; an unknown area only when no event had a known one; ties go to the
  first area by name. A forwarded leg's place is the forwarding SIM's, not the served subscriber's
  (`steps.billing.imsi_is_served_sql`; docs/design.md §12): it counts as unknown;
* the parties the subscriber called (calls, SMS, MMS they made): those whose own consent stands as the
  subscriber's does, by their marketing token (§3.4 ¶5 "including their usage profile, where they too
  consented"); the others only as a count of distinct parties, never named or tokenized. A party whose
  processing is restricted tonight (policy §6.4; `privacy.restricted`) is counted, not named, while the
  restriction stands, whatever their consent: what an erasure does to the profiles that named them
  (`retention.blank`, docs/design.md §12).

There is no household profile: each member of a household is profiled on their own consent only, so a
household is profiled only where each member consented separately. A subscriber without a standing
consent contributes nothing, not even as someone else's called party beyond that count.

Subscribers and named parties are written only as marketing tokens (`privacy.purpose`: the current key's
purpose key, never the analytics token), with `hmac_key_id`. A day is replaced in one folder swap, so the
rows of a subscriber who withdrew are gone from every day the night rebuilds; a day left with nobody to
profile loses its folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from transforms.consents.spells import define_spells
from transforms.lake import Lake
from transforms.lake.commit import commit_folder, remove_tree
from transforms.lake.connection import connect, execute, sql_literal
from transforms.marketing.schema import HOURS, NAMED_PARTIES, PARTITION, PROFILE_COLUMNS, PROFILE_FILE, \
    SUBSCRIBER_TOKEN, ZONE
from transforms.policy import Policy
from transforms.privacy.generalize import UNKNOWN_AREA, area_sql
from transforms.privacy.keys import KeyRing
from transforms.privacy.numbers import e164_sql, numbering_params
from transforms.privacy.purpose import NUMBER_KIND, marketing_keyring
from transforms.privacy.tokens import KEY_ID_COLUMN, token_sql
from transforms.privacy.restricted import MARKETING as MARKETING_ZONE
from transforms.privacy.restricted import Restricted
from transforms.steps.billing import SERVED_IS_CALLED, imsi_is_served_sql, restricted_filter, served_party_sql

USAGE = ("call", "sms", "mms", "data")                # service types that are use of voice and data services
CONTACTS = ("call", "sms", "mms")                     # ... and those that name a party the subscriber called


@dataclass(frozen=True)
class MarketingDay:
    """One event date rebuilt: counts only."""

    event_date: str
    billing_rows: int                 # billing rows of the day read
    rows_profiled: int                # of those, rows of consenting subscribers' usage
    subscribers: int                  # profile rows written
    called_named: int                 # (subscriber, called party) pairs named by token: both consented
    called_counted: int               # pairs only counted: the called party did not consent
    rows_removed: int                 # rows the day held before and no longer does (consent withdrawn)
    path: str | None                  # the file written (relative to the lake); None: nobody to profile


@dataclass(frozen=True)
class MarketingProfilesResult:
    clause: str
    purpose: str
    key_id: str
    consents_standing: int            # subscribers whose profiling consent stands at the end of the night
    days: tuple[MarketingDay, ...]
    days_without_billing: tuple[str, ...]
    seconds: float
    rows_restricted: int = 0          # billing rows left out: their served subscriber's processing is restricted
    cells_blanked: int = 0            # called parties counted, not named: their processing is restricted


def billing_files_of_day(lake: Lake, day: str) -> list[str]:
    return sorted(str(p) for p in (lake.zone("billing") / f"{PARTITION}={day}").glob("*.parquet"))


def define_day_consents(con, day: str, name: str = "day_consents") -> None:
    """`name` (number): subscribers whose spell covers the end of `day` and still stands (`consent_spells`)."""
    execute(con, f"""CREATE OR REPLACE TEMP TABLE {name} AS SELECT DISTINCT subscriber_number AS number
                     FROM consent_spells
                     WHERE granted_at < CAST($day AS DATE) + INTERVAL 1 DAY AND withdrawn_at IS NULL""",
            {"day": day})


def _usage_sql() -> str:
    """The day's usage events: served subscriber and called party in E.164 (binds numbering params, $files)."""
    served = e164_sql(served_party_sql("destination_number", "origin_number"))
    # Only when the served subscriber made the contact is the other party one they called.
    called = e164_sql("destination_number")
    made = f"coalesce(direction NOT IN {SERVED_IS_CALLED!r}, true)"
    return f"""
        SELECT {served} AS number,
               CASE WHEN service_type IN {CONTACTS!r} AND {made} THEN {called} END AS called,
               service_type, duration_s, data_volume_bytes, hour(start_time) AS hour,
               CASE WHEN {imsi_is_served_sql()} THEN {area_sql('b', sql_literal(UNKNOWN_AREA))}
                    ELSE {sql_literal(UNKNOWN_AREA)} END AS area
        FROM read_parquet($files, hive_partitioning = false, union_by_name = true) b
        WHERE service_type IN {USAGE!r}"""


def _profiles_sql() -> str:
    by_hour = ", ".join(f"count(*) FILTER (WHERE hour = {h})" for h in range(HOURS))
    return f"""
        CREATE OR REPLACE TEMP TABLE day_profiles AS
        WITH areas AS (
            SELECT number, area, count(*) AS n FROM usage GROUP BY ALL
        ), home AS (
            SELECT number, arg_min(area, struct_pack(known := area = $unknown, n := -n, area := area)) AS home_area
            FROM areas GROUP BY number
        )
        SELECT u.number, count(*) AS events,
               CAST(round(coalesce(sum(duration_s) FILTER (WHERE service_type = 'call'), 0) / 60.0, 2)
                    AS DECIMAL(18,2)) AS voice_minutes,
               count(*) FILTER (WHERE service_type = 'sms') AS sms_count,
               count(*) FILTER (WHERE service_type = 'mms') AS mms_count,
               CAST(coalesce(sum(data_volume_bytes), 0) AS BIGINT) AS data_volume_bytes,
               [{by_hour}] AS events_by_hour,
               any_value(h.home_area) AS home_area
        FROM usage u JOIN home h USING (number)
        GROUP BY u.number"""


def build_profiles(lake: Lake, policy: Policy, keyring: KeyRing, days: list[str], night: date,
                   work_dir: str | Path, restricted: Restricted = Restricted()) -> MarketingProfilesResult:
    """Rebuild `marketing/event_date=D/` for each day D from all of D's billing rows and the consent
    register as known at the end of `night`."""
    started = time.monotonic()
    work_dir = Path(work_dir)
    purpose = policy.consent.profiling_purpose
    keys = marketing_keyring(keyring, policy)
    key = keys.current
    out_root = lake.zone(ZONE)
    written, without = [], []
    con = connect(work_dir / "marketing_tmp")
    con.execute("SET preserve_insertion_order = false")   # the output is ordered explicitly
    skip = restricted_filter(restricted, MARKETING_ZONE)
    left_out_rows = withheld = 0
    params = numbering_params(policy.operator)
    try:
        define_spells(con, lake, purpose, night)
        standing = con.execute("SELECT count(DISTINCT subscriber_number) FROM consent_spells"
                               " WHERE withdrawn_at IS NULL").fetchone()[0]
        usage_sql, profiles_sql = _usage_sql(), _profiles_sql()
        for day in sorted(set(days)):
            files = billing_files_of_day(lake, day)
            if not files:
                without.append(day)
                continue
            define_day_consents(con, day)
            # Restricted subjects (policy §6.4; docs/design.md §12): none of their rows is profiled.
            day_rows = {"files": files}
            # Their rows as the served party are left out; as a called party, their spellings (`restricted_raw`)
            # are counted, never named.
            leave_out = skip.predicate(con, "read_parquet($files, union_by_name = true)", day_rows, policy, keyring,
                                       numbers=("destination_number",), parts=[str(f) for f in files])
            con.execute("CREATE OR REPLACE TEMP TABLE day_restricted (number VARCHAR)")
            if leave_out != "false":
                left_out_rows += execute(con, f"SELECT count(*) FROM read_parquet($files, union_by_name = true)"
                                              f" WHERE {leave_out}", day_rows).fetchone()[0]
                execute(con, f"""INSERT INTO day_restricted SELECT DISTINCT {e164_sql('raw')} FROM restricted_raw
                                 WHERE kind = 'msisdn'""", params)
            execute(con, f"CREATE OR REPLACE TEMP TABLE day_usage AS {usage_sql} AND NOT {leave_out}",
                    {**params, "files": files})
            billing_rows = execute(con, "SELECT count(*) FROM read_parquet($files)", {"files": files}).fetchone()[0]
            # Only consenting subscribers' usage goes any further.
            con.execute("CREATE OR REPLACE TEMP VIEW usage AS SELECT * FROM day_usage"
                        " WHERE number IN (SELECT number FROM day_consents)")
            execute(con, profiles_sql, {"unknown": UNKNOWN_AREA})
            con.execute("""CREATE OR REPLACE TEMP TABLE day_calls AS
                SELECT DISTINCT u.number, u.called, c.number IS NOT NULL AND r.number IS NULL AS named,
                       c.number IS NOT NULL AND r.number IS NOT NULL AS withheld
                FROM usage u LEFT JOIN day_consents c ON c.number = u.called
                LEFT JOIN day_restricted r ON r.number = u.called
                WHERE u.called IS NOT NULL AND u.called <> u.number""")
            # Tokens of the profiled and the named, under the purpose key: HMAC over distinct numbers only.
            hmac_expr, hmac_params = token_sql(key, sql_literal(NUMBER_KIND), "number")
            execute(con, f"""CREATE OR REPLACE TEMP TABLE day_tokens AS
                SELECT number, {hmac_expr} AS token
                FROM (SELECT number FROM day_profiles UNION SELECT called FROM day_calls WHERE named)""",
                    hmac_params)
            removed = _rows_removed(con, keys, out_root / f"{PARTITION}={day}" / PROFILE_FILE)
            (rows_profiled,) = con.execute("SELECT count(*) FROM usage").fetchone()
            named, counted, restricted_parties = con.execute(
                "SELECT count(*) FILTER (WHERE named), count(*) FILTER (WHERE NOT named),"
                " count(*) FILTER (WHERE withheld) FROM day_calls").fetchone()
            withheld += restricted_parties
            folder = out_root / f"{PARTITION}={day}"
            subscribers = con.execute("SELECT count(*) FROM day_profiles").fetchone()[0]
            if subscribers:
                cols = ", ".join(name for name, _ in PROFILE_COLUMNS)
                commit_folder(folder, lambda stage: execute(con, f"""
                    COPY (SELECT {cols} FROM (
                              SELECT t.token AS {SUBSCRIBER_TOKEN}, $key_id AS {KEY_ID_COLUMN}, p.* EXCLUDE (number),
                                     coalesce(list_sort(n.tokens), []) AS {NAMED_PARTIES},
                                     coalesce(o.others, 0) AS called_parties_other
                              FROM day_profiles p JOIN day_tokens t USING (number)
                              LEFT JOIN (SELECT c.number, list(t.token) AS tokens FROM day_calls c
                                         JOIN day_tokens t ON t.number = c.called WHERE c.named
                                         GROUP BY c.number) n USING (number)
                              LEFT JOIN (SELECT number, count(*) AS others FROM day_calls WHERE NOT named
                                         GROUP BY number) o USING (number))
                          ORDER BY {SUBSCRIBER_TOKEN})
                    TO $dst (FORMAT parquet, COMPRESSION zstd)""",
                    {"key_id": key.key_id, "dst": str(stage / PROFILE_FILE)}))
                path = str((folder / PROFILE_FILE).relative_to(lake.root))
            else:
                if folder.exists():     # nobody to profile any more: the day's earlier rows go, in one swap
                    commit_folder(folder, lambda stage: None)
                    remove_tree(folder)
                path = None
            written.append(MarketingDay(event_date=day, billing_rows=int(billing_rows),
                                        rows_profiled=int(rows_profiled), subscribers=int(subscribers),
                                        called_named=int(named), called_counted=int(counted),
                                        rows_removed=removed, path=path))
    finally:
        con.close()
        remove_tree(work_dir / "marketing_tmp")
    return MarketingProfilesResult(clause=policy.consent.purpose(purpose).clause, purpose=purpose, key_id=key.key_id,
                                   consents_standing=int(standing), days=tuple(written),
                                   days_without_billing=tuple(without), seconds=round(time.monotonic() - started, 3),
                                   rows_restricted=left_out_rows, cells_blanked=int(withheld))


def _rows_removed(con, keys: KeyRing, previous: Path) -> int:
    """Rows of the day's previous file whose subscriber is not profiled tonight (under any key held: a row
    made with a retired key of a subscriber still profiled is replaced, not removed)."""
    if not previous.exists():
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE tonight_tokens (key_id VARCHAR, token BLOB)")
    for k in keys.keys:
        hmac_expr, hmac_params = token_sql(k, sql_literal(NUMBER_KIND), "number")
        execute(con, f"INSERT INTO tonight_tokens SELECT $kid, {hmac_expr} FROM day_profiles",
                {"kid": k.key_id, **hmac_params})
    return int(execute(con, f"""
        SELECT count(*) FROM read_parquet($path) p
        WHERE NOT EXISTS (SELECT 1 FROM tonight_tokens t
                          WHERE t.key_id = p.{KEY_ID_COLUMN} AND t.token = p.{SUBSCRIBER_TOKEN})""",
                       {"path": str(previous)}).fetchone()[0])

"""The analytics and aggregates zones on generated nights: no identifier leaks, stable tokens, rotation."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.conftest import NIGHT, audit_rows, run_cli, zone_rows
from tests.leakscan import night_identifiers, scan

pytestmark = pytest.mark.slow


def analytics(lake: Path, sql: str) -> list[tuple]:
    """Rows of `sql` over the analytics zone, as view `t`."""
    return zone_rows(lake, "analytics", sql)


def test_no_identifier_reaches_analytics_or_aggregates(night, cli_run, released_run):
    _, manifest = night
    needles = night_identifiers(manifest)
    needles += [*manifest.caller_names, *manifest.emails, *manifest.ip_addresses]
    lake = released_run.lake                     # the night's days released, three nights later
    assert list((lake / "analytics").rglob("*.parquet")) and list((lake / "aggregates").rglob("*.parquet"))
    assert scan([lake / "analytics", lake / "aggregates", lake / "audit", lake / "reports"], needles,
                cli_run.stdout + cli_run.stderr + released_run.stdout + released_run.stderr) == {}


def test_analytics_rows_are_pseudonymized_and_generalized(cli_run):
    # Payments and consent extracts load invoices and consent events, not CDRs: they never reach analytics.
    (loaded,), = audit_rows(cli_run.lake, "SELECT sum(rows_loaded) FROM source_files"
                                          " WHERE coalesce(profile NOT IN ('payments', 'consents'), true)")
    (n, keys, hours_only, bad_tac, token_len), = analytics(cli_run.lake, """
        SELECT count(*), string_agg(DISTINCT hmac_key_id, ','),
               bool_and(event_hour = date_trunc('hour', event_hour)),
               count(*) FILTER (WHERE imei_tac IS NOT NULL AND length(imei_tac) <> 8),
               min(octet_length(origin_number)) FROM t""")
    assert n == loaded                                   # every billed row, once
    assert keys == "demo-key-not-secret" and hours_only and bad_tac == 0 and token_len == 16   # HMAC-SHA256 cut to 128 bits
    cols = [r[0] for r in analytics(cli_run.lake, "SELECT column_name FROM (DESCRIBE t)")]
    assert not {"imei", "cell_id", "start_time", "record_id"} & set(cols)


def test_audit_shows_each_analytics_column_and_the_key_id(cli_run):
    actions = dict(audit_rows(cli_run.lake, "SELECT column_name, any_value(action) FROM analytics_findings GROUP BY 1"))
    assert actions["origin_number"] == "pseudonymized" and actions["imsi"] == "pseudonymized"
    assert actions["imei"] == actions["cell_id"] == actions["start_time"] == "generalized"
    assert actions["charged_amount"] == "kept"
    logged = audit_rows(cli_run.lake, "SELECT DISTINCT column_name, method, key_id FROM pseudonymization_log ORDER BY 1")
    assert ("origin_number", "hmac-sha256", "demo-key-not-secret") in logged


def test_the_nights_days_wait_for_their_window_then_release_figures_of_k_or_more(cli_run, released_run):
    # The night itself releases nothing: its days are inside the policy's aggregate_release window.
    assert not list((cli_run.lake / "aggregates").rglob("*.parquet"))
    assert audit_rows(cli_run.lake, "SELECT count(*) FROM aggregate_releases") == [(0,)]
    assert audit_rows(cli_run.lake, "SELECT DISTINCT reason FROM aggregate_waiting") == [("window_open",)]
    (k, released), = audit_rows(released_run.lake, "SELECT min(k), sum(groups_released) FROM aggregate_releases")
    files = [str(p) for p in (released_run.lake / "aggregates").rglob("*.parquet")]
    (rows_out, fewest), = duckdb.execute("SELECT count(*), min(subscribers) FROM read_parquet(?, union_by_name = true)",
                                         [files]).fetchall()
    # Something was released, and no released figure (cell or total) describes fewer than k people.
    assert k == 10 and released > 0 and rows_out > 0 and fewest >= k


def test_the_generated_nights_release_tables_withstand_the_differencing_attack(cli_run, released_run):
    # Every released table of the night's days (released by the night their window closes), each parent cell
    # minus the finer released cells inside it: no remainder of 1..k-1 subscribers, counted from the analytics
    # rows themselves (tests/transforms/privacy/differencing.py); and the audit rows say per table what the
    # files hold.
    from tests.transforms.privacy.conftest import read_output
    from tests.transforms.privacy.differencing import attack, read_rows
    from transforms.policy import load_policy

    policy = load_policy()
    lake = Path(released_run.lake)
    rows = read_rows(f"{lake}/analytics/*/*.parquet")
    out = read_output(lake / "aggregates", release=1)
    assert rows and out and attack(rows, out, policy, policy.k_anonymity) == []
    recorded = audit_rows(lake, "SELECT CAST(event_date AS VARCHAR), release_table, groups_released,"
                                " other_cells_released, events FROM aggregate_releases WHERE release_number = 1")
    assert {(r[0], r[1]) for r in recorded} == {(day, t.name) for day in out for t in policy.release_tables}
    for day, table, released, other, events in recorded:
        assert released == sum(not c["other"] for c in out[day][table])
        assert other == sum(c["other"] for c in out[day][table])
        assert events == sum(1 for r in rows if str(r["event_date"]) == day)


def test_tokens_join_across_nights_and_survive_rotation(tmp_path):
    from sample_data.generate import generate_night

    lake = tmp_path / "lake"
    first, second = tmp_path / "n1", tmp_path / "n2"
    generate_night(first, rows=800, seed=5, night=date(2026, 11, 21))
    manifest = generate_night(second, rows=800, seed=5, night=date(2026, 11, 22))
    assert run_cli("run", "--landing", str(first), "--lake", str(lake), "--date", "2026-11-21", "--quiet").returncode == 0
    same_key = analytics(lake, "SELECT count(DISTINCT origin_number) FROM t")[0][0]
    assert run_cli("run", "--landing", str(second), "--lake", str(lake), "--date", NIGHT, "--quiet").returncode == 0
    # Same key, same subscribers (same seed): the second night's tokens match the first night's.
    shared = analytics(lake, """SELECT count(*) FROM (
        SELECT origin_number FROM t WHERE event_date = DATE '2026-11-21'
        INTERSECT SELECT origin_number FROM t WHERE event_date = DATE '2026-11-22')""")[0][0]
    assert shared > 0 and same_key > 0

    # Rotate: a new key k2 for a third night; the demo key is retired but still held for lookups.
    third = tmp_path / "n3"
    generate_night(third, rows=800, seed=5, night=date(2026, 11, 23))
    retired = tmp_path / "retired.keys"
    from transforms.privacy.keys import DEMO_KEY_ID, demo_keyring

    retired.write_text(f"{DEMO_KEY_ID}:{demo_keyring().current.secret.hex()}\n")
    retired.chmod(0o600)                        # a key file only its owner may read
    env = {"CDR_AUDIT_HMAC_KEY": "ab" * 32, "CDR_AUDIT_HMAC_KEY_ID": "k2",
           "CDR_AUDIT_HMAC_RETIRED_KEYS_FILE": str(retired)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert run_cli("run", "--landing", str(third), "--lake", str(lake), "--date", "2026-11-23",
                       "--quiet").returncode == 0
        # Each file keeps the key id it was made with: old files are untouched, the new night uses k2
        # (a night's events fall on more than one UTC date, so one date can hold files of both keys).
        third_files = {r[0] for r in audit_rows(lake, "SELECT sha256 FROM source_files WHERE night = DATE '2026-11-23'"
                                                " AND status = 'loaded'"
                                                " AND profile NOT IN ('payments', 'consents')")}
        key_by_file = dict(analytics(lake, "SELECT source_file_sha256, string_agg(DISTINCT hmac_key_id, ',')"
                                           " FROM t GROUP BY 1"))
        assert third_files and all(key_by_file[f] == "k2" for f in third_files)
        assert {k for f, k in key_by_file.items() if f not in third_files} == {DEMO_KEY_ID}
        # A subject-access lookup finds the subscriber before and after the rotation.
        subscriber = manifest.msisdns[0]
        found = run_cli("lookup", "--lake", str(lake), "--number", "0" + subscriber[4:])
        assert found.returncode == 0, found.stderr
        assert f"key {DEMO_KEY_ID}" in found.stdout and "key k2" in found.stdout
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

"""transforms/retention/rows.py: how the sweep reads each data set's rows."""

from __future__ import annotations

import duckdb

from transforms.privacy.numbers import numbering_params
from transforms.retention.rows import identifier_columns, part_files, row_source, served_number, subject_key


def test_identifying_columns_per_data_set(policy):
    cdr = ["record_id", "origin_number", "destination_number", "redirection_number", "imsi", "imei", "cell_id",
           "start_time", "charged_amount"]
    # Numbers, IMSI and IMEI identify a subscriber; a cell names a place, amounts nobody.
    assert identifier_columns("billing", cdr, policy) == ["record_id", "origin_number", "destination_number",
                                                          "redirection_number", "imsi", "imei"]
    payments = ["record_id", "invoice_id", "account_id", "subscriber_number", "amount_due"]
    assert sorted(identifier_columns("quarantine", payments, policy)) == sorted(
        ["record_id", "invoice_id", "account_id", "subscriber_number"])
    # Pseudonymous zones: their tokens, compared as hex (the IMEI is only a TAC there).
    analytics = ["origin_number", "destination_number", "imsi", "imei_tac", "hmac_key_id"]
    assert identifier_columns("analytics", analytics, policy) == ["hex(origin_number)", "hex(destination_number)",
                                                                  "hex(imsi)"]
    assert identifier_columns("roaming", ["subscriber_token", "hmac_key_id", "days_home"], policy) == [
        "hex(subscriber_token)"]


def test_a_row_is_its_served_subscribers_in_e164(tmp_path, policy):
    part = tmp_path / "night=2026-11-22" / "part-aaaaaaaaaaaaaaaa.parquet"
    part.parent.mkdir()
    duckdb.execute(f"""COPY (SELECT * FROM (VALUES
        ('040 111 222', '+38641333444', 'outgoing', '2026-11-21 10:00:00'),
        ('+38640555666', '0038641777888', 'incoming', NULL),
        ('040111222', '041999000', 'forwarded', 'not a time'))
        v(origin_number, destination_number, direction, start_time)) TO '{part}' (FORMAT parquet)""")
    columns = ["origin_number", "destination_number", "direction", "start_time"]
    assert served_number(columns).startswith("CASE WHEN direction IN")
    assert served_number(["subscriber_number"]) == "subscriber_number"
    key = subject_key("quarantine", columns)
    rows = duckdb.execute(f"SELECT served_e164, {key} FROM {row_source('quarantine', columns)}",
                          {"path": str(part), "value": "2026-11-22", **numbering_params(policy.operator)}).fetchall()
    # Outgoing: the caller; incoming and forwarded: the called party. A row without a usable time is
    # keyed by the night it was quarantined.
    assert rows == [("+38640111222", "+38640111222|2026-11-21"), ("+38641777888", "+38641777888|2026-11-22"),
                    ("+38641999000", "+38641999000|2026-11-22")]


def test_only_part_files_in_partition_folders_count(lake):
    for rel in ("event_date=2026-11-22/part-a.parquet", "event_date=2026-11-22/.part-b.parquet.retention-tmp",
                ".staging-event_date=2026-11-23-1/part.parquet", "loose.parquet"):
        p = lake.zone("billing") / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    assert [p.name for p in part_files(lake, "billing")] == ["part-a.parquet"]

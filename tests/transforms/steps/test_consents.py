"""transforms/steps/consents.py: the consent extract into the consent register, on tiny hand-made files.

Expected counts, reasons and instants are written from the rules (policy §3.4; one fault per bad row), not
copied from a run.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from tests.transforms.steps.extracts import assert_quarantined_as_declared, write, zone_rows
from transforms.consents.register import REGISTER_COLUMNS, define_standing
from transforms.lake.partitions import part_name
from transforms.steps.consents import CONSENT_COLUMNS, NOT_CONSENTS, is_consents_extract, load_consents
from transforms.steps.lines import fingerprint
from transforms.steps.payments import PAYMENTS_COLUMNS, is_payments_extract

HEADER = ",".join(CONSENT_COLUMNS) + "\n"
NIGHT = "2026-11-22"
A, B = "+38640111222", "+38641333444"
GRANT = f"{A},marketing_profiling,granted,2026-11-03T09:15:00Z,self_care_app\n"
# The same instant as GRANT's, written three other ways (policy operator.local_timezone: Europe/Ljubljana,
# UTC+1 in November): with an offset, without one (local), and with fractions of a second of zero.
SAME_INSTANT = ("2026-11-03T10:15:00+01:00", "2026-11-03 10:15:00", "2026-11-03T09:15:00.000Z")
WITHDRAW = f"{B},partner_offers,withdrawn,2026-07-01T12:00:00,contact_centre\n"      # July: local is UTC+2




def run(path, policy, lake, work_dir, run_id: str = "r1", night: str = NIGHT):
    return load_consents(path, policy, lake, work_dir, night=night, run_id=run_id)


def test_valid_events_land_in_the_registers_layout_in_utc_by_recorded_month(tmp_path, policy, lake, work_dir,
                                                                         pq_columns):
    path = write(tmp_path, "consents_2026-11-22.csv", HEADER + GRANT + WITHDRAW)
    sha = fingerprint(path).sha256
    result = run(path, policy, lake, work_dir)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == ("loaded", 2, 2, 0)
    assert result.rows_by_partition == {"2026-07": 1, "2026-11": 1}
    assert sorted(result.zone_files) == [f"consents/recorded_month=2026-07/{part_name(sha)}",
                                         f"consents/recorded_month=2026-11/{part_name(sha)}"]
    assert tuple(pq_columns(lake.root / result.zone_files[0])) == REGISTER_COLUMNS     # the layout, exactly
    got = zone_rows(lake, "consents", "SELECT subscriber_number, purpose, status, recorded_at, channel, source_row,"
                                      " as_of, run_id, source_file_sha256 FROM t ORDER BY source_row")
    assert got == [(A, "marketing_profiling", "granted", datetime(2026, 11, 3, 9, 15), "self_care_app", 2,
                    date(2026, 11, 22), "r1", sha),
                   (B, "partner_offers", "withdrawn", datetime(2026, 7, 1, 10, 0), "contact_centre", 3,   # 12:00 CEST
                    date(2026, 11, 22), "r1", sha)]
    types = dict(zone_rows(lake, "consents", "SELECT column_name, column_type FROM (DESCRIBE t)"))
    assert (types["recorded_at"], types["as_of"]) == ("TIMESTAMP", "DATE")


@pytest.mark.parametrize("written", SAME_INSTANT)
def test_offsets_and_local_times_are_one_instant_in_utc(tmp_path, policy, lake, work_dir, written):
    row = GRANT.replace("2026-11-03T09:15:00Z", written)
    run(write(tmp_path, "consents_x.csv", HEADER + row), policy, lake, work_dir)
    assert zone_rows(lake, "consents", "SELECT recorded_at FROM t") == [(datetime(2026, 11, 3, 9, 15),)]


def test_numbers_are_normalized_to_e164_like_billing_numbers(tmp_path, policy, lake, work_dir):
    rows = "".join(GRANT.replace(A, n).replace("09:15", f"09:1{i}") for i, n in
                   enumerate(("040 111 222", "0038640111222", "38640111222", "(040) 111-222")))
    result = run(write(tmp_path, "consents_x.csv", HEADER + rows), policy, lake, work_dir)
    assert result.rows_loaded == 4
    assert zone_rows(lake, "consents", "SELECT DISTINCT subscriber_number FROM t") == [(A,)]


BAD_ROWS = {  # source_row (header 1, two good rows 2-3) -> (row, its reason, the column that must be blank)
    4: ("someone@example.com,marketing_profiling,granted,2026-11-03T09:15:00Z,email",
        "subscriber_number_invalid", "subscriber_number"),
    5: ("3864011122,marketing_profiling,granted,2026-11-03T09:15:00Z,email",         # 386 + 7 digits
        "subscriber_number_invalid", "subscriber_number"),
    6: (f"{A},newsletters,granted,2026-11-03T09:15:00Z,email", "purpose_unknown", "purpose"),
    7: (f"{A},Marketing_Profiling,granted,2026-11-04T09:15:00Z,email", "purpose_unknown", "purpose"),
    8: (f"{A},marketing_contact,given,2026-11-03T09:15:00Z,email", "status_invalid", "status"),
    9: (f"{A},marketing_contact,,2026-11-05T09:15:00Z,email", "status_invalid", None),
    10: (f"{A},marketing_contact,granted,2026-02-30T09:15:00Z,email", "recorded_at_invalid", "recorded_at"),
    11: (f"{A},marketing_contact,granted,2026-11-03,email", "recorded_at_invalid", "recorded_at"),   # no time
    12: (f"{A},marketing_contact,granted,03.11.2026 09:15,email", "recorded_at_invalid", "recorded_at"),
    13: (f"{A},marketing_contact,granted,2026-11-03T09:15:00+0100,email", "recorded_at_invalid", "recorded_at"),
    14: (f"{A},marketing_contact,granted,2026-11-23T00:00:00Z,email", "recorded_after_night", "recorded_at"),
    15: (f"{A},marketing_contact,granted,2027-01-01T00:00:00Z,email", "recorded_after_night", "recorded_at"),
    16: (f"{A},marketing_contact,granted,2026-11-06T09:15:00Z,carrier_pigeon", "channel_unknown", "channel"),
    17: (f"{A},marketing_contact,granted,2026-11-06T09:16:00Z,", "channel_unknown", None),
    18: (GRANT.strip(), "duplicate_consent", None),                     # line 2 again: the first copy stays
    # the same subscriber, purpose and instant as line 2, written otherwise: still the same event
    19: (f"040 111 222,marketing_profiling,withdrawn,{SAME_INSTANT[0]},email", "duplicate_consent", None),
}


def test_each_kind_of_bad_row_is_quarantined_with_its_reason_and_failing_value_blanked(tmp_path, policy, lake,
                                                                                        work_dir):
    text = HEADER + GRANT + WITHDRAW + "".join(row + "\n" for row, _, _ in BAD_ROWS.values())
    result = run(write(tmp_path, "consents_2026-11-22.csv", text), policy, lake, work_dir)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (18, 2, 16)
    assert (result.rows_duplicate, result.rows_unparseable) == (2, 0)
    assert result.quarantine_files == (f"quarantine/night={NIGHT}/{part_name(result.sha256)}",)
    assert_quarantined_as_declared(lake, result, BAD_ROWS, list(CONSENT_COLUMNS), NIGHT, "consents")
    assert zone_rows(lake, "consents", "SELECT source_row FROM t ORDER BY source_row") == [(2,), (3,)]


def test_the_end_of_the_night_is_midnight_utc(tmp_path, policy, lake, work_dir):
    # Night 22 Nov: 23:59:59 UTC is on the night; 00:30 on the 23rd in Ljubljana (+01:00) is 23:30 UTC, too.
    rows = "".join(f"{A},marketing_contact,granted,{t},email\n" for t in
                   ("2026-11-22T23:59:59Z", "2026-11-23T00:30:00+01:00", "2026-11-23T00:00:00Z"))
    result = run(write(tmp_path, "consents_x.csv", HEADER + rows), policy, lake, work_dir)
    assert (result.rows_loaded, result.quarantined_by_reason) == (2, {"recorded_after_night": 1})


def test_purposes_and_channels_are_the_policys(tmp_path, policy, lake, work_dir):
    import dataclasses

    narrow = dataclasses.replace(policy, consent=dataclasses.replace(
        policy.consent, purposes=policy.consent.purposes[:1], channels=("post",)))
    row = f"{A},{narrow.consent.purpose_names[0]},granted,2026-11-03T09:15:00Z,post\n"
    result = run(write(tmp_path, "consents_x.csv", HEADER + row + GRANT), narrow, lake, work_dir)
    # GRANT's purpose and channel are valid under the real policy, not under this one.
    assert (result.rows_loaded, result.quarantined_by_reason) == (1, {"purpose_unknown": 1, "channel_unknown": 1})


def test_an_extract_cannot_deliver_the_channel_only_a_requests_answer_records(tmp_path, policy, lake, work_dir):
    # §6.3/§6.6: the withdrawals an answer records carry `consent.request_channel`; an extract's row claiming it
    # would pass for one (or, as a grant, for the tool's word), so it is quarantined with its own reason alone.
    import dataclasses

    answer = policy.consent.request_channel
    row = f"{A},marketing_contact,withdrawn,2026-11-06T09:15:00Z,{answer}\n"
    result = run(write(tmp_path, "consents_x.csv", HEADER + GRANT + row), policy, lake, work_dir)
    assert (result.rows_loaded, result.quarantined_by_reason) == (1, {"channel_request_only": 1})
    assert zone_rows(lake, "quarantine", "SELECT reason, channel FROM t") == [("channel_request_only", None)]
    # The policy names the channel: another name is refused instead, and the old one is an unknown channel.
    renamed = dataclasses.replace(policy, consent=dataclasses.replace(policy.consent, request_channel="dpo_answer"))
    row2 = row.replace(answer, "dpo_answer").replace("09:15", "09:16")
    result = run(write(tmp_path, "consents_y.csv", HEADER + row + row2), renamed, lake, work_dir, run_id="r2")
    assert result.quarantined_by_reason == {"channel_unknown": 1, "channel_request_only": 1}


def test_every_row_read_ends_in_exactly_one_place(tmp_path, policy, lake, work_dir):
    broken = f"{A},marketing_contact\n"                                           # too few fields
    text = HEADER + GRANT + broken + WITHDRAW + "".join(row + "\n" for row, _, _ in BAD_ROWS.values())
    result = run(write(tmp_path, "consents_x.csv", text), policy, lake, work_dir)
    loaded = zone_rows(lake, "consents", "SELECT record_id, source_row FROM t")
    quarantined = zone_rows(lake, "quarantine", "SELECT record_id, source_row FROM t")
    assert result.rows_read == len(loaded) + len(quarantined) == 19
    assert (result.rows_loaded, result.rows_quarantined, result.rows_unparseable) == (len(loaded), len(quarantined), 1)
    records = [r for r, _ in loaded + quarantined]
    assert len(set(records)) == len(records)                                # no record in two places
    assert sorted(line for _, line in loaded + quarantined) == list(range(2, 21))   # every line once


def test_loading_the_same_extract_again_changes_nothing(tmp_path, policy, lake, work_dir):
    path = write(tmp_path, "consents_x.csv", HEADER + GRANT + WITHDRAW + BAD_ROWS[6][0] + "\n")
    first = run(path, policy, lake, work_dir, run_id="r1")
    before = sorted((p.relative_to(lake.root), p.stat().st_size) for p in lake.root.rglob("*.parquet"))
    second = run(path, policy, lake, work_dir, run_id="r2")
    assert (first.rows_loaded, first.rows_quarantined) == (second.rows_loaded, second.rows_quarantined) == (2, 1)
    assert sorted((p.relative_to(lake.root), p.stat().st_size) for p in lake.root.rglob("*.parquet")) == before
    assert zone_rows(lake, "consents", "SELECT count(*) FROM t") == [(2,)]
    assert zone_rows(lake, "quarantine", "SELECT count(*) FROM t") == [(1,)]


def standing(lake, day: date) -> dict:
    con = duckdb.connect()
    define_standing(con, lake, day)
    return {(s, p): g for s, p, g in con.execute("SELECT subscriber_number, purpose, granted FROM consent_standing")
            .fetchall()}


def test_two_extracts_landed_out_of_order_give_the_latest_consent(tmp_path, policy, lake, work_dir):
    # The extract of 10 Nov (a withdrawal) lands first; the extract of 5 Nov (the grant, and a grant of B)
    # arrives two nights later. The latest recorded event counts (§3.4 ¶3), whatever order they landed in.
    later = write(tmp_path, "consents_2026-11-10.csv",
                  HEADER + f"{A},marketing_profiling,withdrawn,2026-11-10T08:00:00+01:00,self_care_web\n")
    earlier = write(tmp_path, "consents_2026-11-05.csv", HEADER + GRANT
                    + f"{B},marketing_profiling,granted,2026-11-04T18:00:00Z,point_of_sale\n")
    run(later, policy, lake, work_dir / "a", night="2026-11-10")
    run(earlier, policy, lake, work_dir / "b", night="2026-11-12")
    assert standing(lake, date(2026, 11, 5)) == {(A, "marketing_profiling"): True, (B, "marketing_profiling"): True}
    assert standing(lake, date(2026, 11, 12)) == {(A, "marketing_profiling"): False,
                                                  (B, "marketing_profiling"): True}


# ------------------------------------------------------------------ hostile input


def test_a_nul_byte_a_huge_line_and_a_foreign_encoding_are_quarantined_and_the_rest_loads(tmp_path, policy, lake,
                                                                                         work_dir):
    nul = f"{A},marketing_contact,granted,2026-11-04T09:15:00Z,em\x00ail\n".encode()
    huge = f"{A},value_added_services,granted,2026-11-04T09:15:00Z,{'x' * 2_000_000}\n".encode()
    cp1250 = f"{A},partner_offers,granted,2026-11-04T09:15:00Z,pošta\n".encode("cp1250")
    body = HEADER.encode() + GRANT.encode() + nul + huge + cp1250 + WITHDRAW.encode()
    result = run(write(tmp_path, "consents_x.csv", body), policy, lake, work_dir)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (5, 2, 3)
    # None of the three channels is the policy's; the cp1250 line is also not UTF-8.
    assert result.quarantined_by_reason == {"channel_unknown": 3, "invalid_encoding": 1}
    assert zone_rows(lake, "consents", "SELECT source_row FROM t ORDER BY 1") == [(2,), (6,)]
    # No quarantined value holds the hostile content: the failing values are blanked.
    kept = zone_rows(lake, "quarantine", "SELECT source_row, channel FROM t ORDER BY 1")
    assert [line for line, _ in kept] == [3, 4, 5]
    assert all(channel is None for _, channel in kept)


def test_a_byte_order_mark_does_not_hide_the_header(tmp_path, policy, lake, work_dir):
    result = run(write(tmp_path, "export.csv", ("\ufeff" + HEADER + GRANT).encode()), policy, lake, work_dir)
    assert (result.status, result.rows_loaded) == ("loaded", 1)


# ------------------------------------------------------------------ telling a consent extract apart


@pytest.mark.parametrize("content, reason", [(b"", "file is empty (0 bytes)"), (HEADER.encode(), "no data rows"),
                                             (b"\n\r\n", "no data rows (blank lines only)")])
def test_an_empty_extract_is_reported_and_writes_nothing(tmp_path, policy, lake, work_dir, content, reason):
    result = run(write(tmp_path, "consents_x.csv", content), policy, lake, work_dir)
    assert (result.status, result.reason, result.rows_read, result.rows_loaded) == ("empty", reason, 0, 0)
    assert not list(lake.root.rglob("*.parquet"))


def test_a_consents_named_file_without_the_consent_header_is_refused_whole(tmp_path, policy, lake, work_dir):
    cdr = "origin_number,destination_number,start_time\n+38640111222,+38641333444,2026-11-22T10:00:00Z\n"
    path = write(tmp_path, "consents_2026-11-22.csv", cdr + cdr.splitlines()[1] + "\n")
    assert is_consents_extract(path.read_bytes(), path.name)
    result = run(path, policy, lake, work_dir)
    assert (result.status, result.reason, result.rows_read, result.rows_quarantined) == (
        "rejected_file", NOT_CONSENTS, 2, 2)                 # its header line is no record
    assert not list(lake.root.rglob("*.parquet"))


@pytest.mark.parametrize("name, head, sent", [
    ("consents_2026-11-22.csv", "origin_number,destination_number\n", True),     # the name alone
    ("CONSENTS_night.CSV", "x\n", True),
    ("consent_export.csv", HEADER, True),                                        # the header alone
    ("consents.csv", "x\n", False), ("my_consents_1.csv", "x\n", False), ("consents_1.parquet", "x\n", False),
    ("export.csv", HEADER.replace("channel", "source"), False),
    ("export.csv", HEADER.rstrip("\n") + ",note\n", False),
])
def test_a_consent_extract_is_known_by_its_header_or_its_name(name, head, sent):
    assert is_consents_extract(head.encode(), name) is sent


def test_the_consent_and_payments_headers_tell_each_other_apart():
    assert not is_payments_extract(HEADER.encode(), "export.csv")
    assert not is_consents_extract((",".join(PAYMENTS_COLUMNS) + "\n").encode(), "export.csv")


def test_the_night_routes_consent_extracts_and_records_them(tmp_path, policy, formats):
    """Consent files take the consent step (by header or name), are audited, and count apart from billing."""
    from tests.conftest import audit_rows
    from transforms.lake import Lake
    from transforms.nightly.audit_file import audit_file
    from transforms.nightly.close import close_night
    from transforms.nightly.plan import plan_night
    from transforms.privacy.keys import demo_keyring

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "consent_events.csv").write_text(HEADER + GRANT + WITHDRAW + BAD_ROWS[16][0] + "\n")  # renamed
    (landing / "consents_broken.csv").write_text("origin_number,destination_number\n+38640111222,+38641333444\n")
    (landing / "calls.csv").write_text("origin_number,destination_number,direction,start_time,duration_s,"
                                       "service_type\n+38640111222,+38641333444,outgoing,2026-11-22T10:00:00Z,10,call\n")
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night=NIGHT, run_id="r1", trigger="test")
    for planned in plan.to_audit:
        audit_file(planned, lake, policy, formats, run_id="r1", night=NIGHT, keyring=demo_keyring())
    assert close_night(lake, policy, run_id="r1").status == "completed"
    got = {r[0]: r[1:] for r in audit_rows(lake.root, "SELECT file_name, profile, status, rows_read, rows_loaded,"
                                                      " rows_rejected, rows_failing, reason FROM source_files")}
    assert got["consent_events.csv"] == ("consents", "loaded", 3, 2, 1, 1, None)
    assert got["consents_broken.csv"] == ("consents", "rejected_file", 1, 0, 1, None, NOT_CONSENTS)
    assert got["calls.csv"][:4] == ("canonical_csv", "loaded", 1, 1)
    assert audit_rows(lake.root, "SELECT rows FROM rejection_reasons WHERE file_name = 'consent_events.csv'"
                                 " AND reason = 'channel_unknown'") == [(1,)]
    assert audit_rows(lake.root, "SELECT rows_billing, rows_invoices, rows_consents FROM v_nightly_volumes") == [
        (1, 0, 2)]
    for table in ("field_findings", "validation_results", "pseudonymization_log"):
        assert audit_rows(lake.root, f"SELECT count(*) FROM {table} WHERE file_name LIKE 'consent%'") == [(0,)], table
    assert len(list(lake.zone("consents").rglob("*.parquet"))) == 2

"""transforms/subjects/export.py and `cdr-audit subject export`: the subject's copy on the hand-made lake
(conftest): every zone's CSV and JSON, the same rows in both, counts in summary.json, owner-only modes, no
identifier of the people whose calls the subject was only the other party of, nothing of the subject on the
terminal."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import stat
from decimal import Decimal

import pytest

from tests.leakscan import scan
from tests.transforms.privacy.conftest import KEY_A, KEY_B, ROTATED, SECRET_A, SECRET_B, by_hand
from tests.transforms.subjects.conftest import (CALLERS, O_IMSI, OTHER_PARTY, S_IMEI, S_IMSI, S_INVOICE_ROWS,
                                                S_NATIONAL, S_NUMBER, SERVED)
from transforms.subjects.export import INDEX, SUMMARY, ExportError, export_subject, render_index
from transforms.subjects.find import ZONES
from transforms.subjects.subject import Subject

FILES = {f"{z}.{ext}" for z in ZONES for ext in ("csv", "json")} | {SUMMARY, INDEX}


@pytest.fixture()
def exported(subject_lake, policy, tmp_path):
    out = tmp_path / "export"
    result = export_subject(subject_lake, policy, ROTATED, Subject.of(S_NUMBER, "msisdn", ROTATED, policy), out)
    return out, result


def csv_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def as_text(v) -> str:
    """A JSON value as the CSV writes it (CSV has text only; NULL is empty)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def test_every_zone_has_its_files_and_nothing_else_is_written(exported):
    out, _ = exported
    assert {p.name for p in out.iterdir()} == FILES


def test_counts_are_what_the_lake_holds_of_the_subject(exported):
    out, result = exported
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["request_id"] is None and summary["right"] == "access"
    assert summary["zones"] == {"billing": len(SERVED) + len(OTHER_PARTY), "invoices": S_INVOICE_ROWS,
                                "analytics": len(SERVED) + len(OTHER_PARTY), "roaming": 2, "marketing": 0,
                                "quarantine": 3, "consents": 0, "aggregates": 0}
    # The consents and marketing zones are there, empty: searched, nothing found.
    assert summary["actions"] == {**dict.fromkeys(ZONES, "exported"), "aggregates": "anonymous"}
    assert result.counts == summary["zones"]


def test_csv_and_json_hold_the_same_rows_and_the_summarys_count(exported):
    out, _ = exported
    counts = json.loads((out / SUMMARY).read_text())["zones"]
    for zone in ZONES:
        # Amounts are decimals: read as written (0.5000), not as binary floats.
        from_json = json.loads((out / f"{zone}.json").read_text(), parse_float=Decimal)
        from_csv = csv_rows(out / f"{zone}.csv")
        assert len(from_json) == len(from_csv) == counts[zone], zone
        assert [{k: as_text(v) for k, v in r.items()} for r in from_json] == from_csv, zone


def test_values_are_iso_dates_and_hex_tokens(exported):
    out, _ = exported
    billing = json.loads((out / "billing.json").read_text())
    assert {r["start_time"] for r in billing} >= {"2026-06-30T10:00:00Z", "2026-07-02T08:00:00Z"}
    assert {r["event_date"] for r in billing} == {"2026-06-30", "2026-07-02"}
    analytics = json.loads((out / "analytics.json").read_text())
    june = by_hand(SECRET_A, f"msisdn:{S_NUMBER}").upper()
    july = by_hand(SECRET_B, f"msisdn:{S_NUMBER}").upper()
    assert {r["origin_number"] for r in analytics if r["subject_role"] == "served"} >= {june, july}


def test_the_folder_is_owner_only(exported):
    out, _ = exported
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}


def test_no_identifier_of_the_callers_reaches_the_subject(exported):
    out, _ = exported
    callers = [v for values in CALLERS.values() for v in values]
    callers += [n.lstrip("+") for n, *_ in CALLERS.values()] + ["0" + n[4:] for n, *_ in CALLERS.values()]
    # ... nor their tokens (under the key June's analytics were made with), nor another subscriber's roaming.
    callers += [by_hand(SECRET_A, f"{kind}:{v}").upper() for n, imsi, *_ in CALLERS.values()
                for kind, v in (("msisdn", n), ("imsi", imsi))]
    callers += [by_hand(SECRET_A, f"imsi:{O_IMSI}").upper()]
    assert scan([out], callers) == {}
    # The subject's own identifiers are there (their own rows are given whole).
    assert set(scan([out], [S_NUMBER, S_NATIONAL, S_IMSI, S_IMEI])) == {S_NUMBER, S_NATIONAL, S_IMSI, S_IMEI}


def test_index_says_what_the_policy_says(exported, policy):
    out, _ = exported
    page = (out / INDEX).read_text()
    billing = policy.retention_of("billing")
    for text in ("Informacijski pooblaščenec", billing.legal_basis, billing.clause, str(billing.keep),
                 policy.retention_of("invoices").legal_basis, policy.access.of("analytics").group.unix_group,
                 policy.field("origin_number").term, "other_party", "billing / mediation systems", "§6.1"):
        assert text in page or text.replace("'", "&#39;") in page, text


def test_index_escapes_what_it_shows(subject_lake, policy, tmp_path):
    hostile = dataclasses.replace(policy, title="<script>alert(1)</script>")
    export_subject(subject_lake, hostile, ROTATED, Subject.of(S_NUMBER, "msisdn", ROTATED, policy), tmp_path / "o")
    page = (tmp_path / "o" / INDEX).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_a_zone_with_nothing_has_a_header_or_an_empty_list(lake, policy, tmp_path):
    out = tmp_path / "empty-lake-export"
    export_subject(lake, policy, ROTATED, Subject.of(S_NUMBER, "msisdn", ROTATED, policy), out, right="portability")
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["right"] == "portability" and set(summary["zones"].values()) == {0}
    for zone in ZONES:
        assert json.loads((out / f"{zone}.json").read_text()) == [] and csv_rows(out / f"{zone}.csv") == []


def test_out_must_be_new_or_empty(subject_lake, policy, tmp_path):
    subject = Subject.of(S_NUMBER, "msisdn", ROTATED, policy)
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("keep me")
    with pytest.raises(ExportError):
        export_subject(subject_lake, policy, ROTATED, subject, full)
    assert [p.name for p in full.iterdir()] == ["x"]
    with pytest.raises(ExportError):
        export_subject(subject_lake, policy, ROTATED, subject, full / "x")
    with pytest.raises(ExportError):
        export_subject(subject_lake, policy, ROTATED, subject, tmp_path / "n", right="erasure")
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    empty.chmod(0o2755)
    export_subject(subject_lake, policy, ROTATED, subject, empty)
    assert stat.S_IMODE(empty.stat().st_mode) == 0o700


def test_cli_prints_counts_and_the_folder_only(subject_lake, tmp_path, monkeypatch, capsys):
    from transforms.entry.cli import main

    retired = tmp_path / "retired.keys"
    retired.write_text(f"{KEY_A.key_id}:{SECRET_A.hex()}\n")
    retired.chmod(0o600)
    monkeypatch.setenv("CDR_AUDIT_HMAC_KEY", SECRET_B.hex())
    monkeypatch.setenv("CDR_AUDIT_HMAC_KEY_ID", KEY_B.key_id)
    monkeypatch.setenv("CDR_AUDIT_HMAC_RETIRED_KEYS_FILE", str(retired))
    out = tmp_path / "cli-export"
    assert main(["subject", "export", "--lake", str(subject_lake.root), "--msisdn", S_NATIONAL,
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["zones"]["billing"] == len(SERVED) + len(OTHER_PARTY)
    shown = {m[1]: (int(m[2]), m[3]) for m in re.finditer(r"^ +(\w+) +(\d+) row\(s\) +(\w+)$", printed.out, re.M)}
    assert shown == {z: (summary["zones"][z], summary["actions"][z]) for z in ZONES}
    assert str(out) in printed.out
    tokens = [by_hand(s, f"{k}:{v}") for s in (SECRET_A, SECRET_B) for k, v in (("msisdn", S_NUMBER), ("imsi", S_IMSI))]
    assert scan([], [S_NUMBER, S_NATIONAL, S_NUMBER.lstrip("+"), S_IMSI, S_IMEI, *tokens],
                printed.out + printed.err) == {}
    # A second export into the same folder is refused, without the number in the message.
    assert main(["subject", "export", "--lake", str(subject_lake.root), "--imsi", S_IMSI, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "new or empty" in err and S_IMSI not in err


def test_index_says_whether_a_profile_is_held_and_what_it_leads_to(exported, policy):
    """§6.1, last indent: the existence of profiling, its logic and its consequences; §3.4 ¶5: a profile leads to
    offers and never to a legal obligation for the subscriber."""
    out, result = exported
    page = (out / INDEX).read_text()
    profiling = policy.consent.purpose(policy.consent.profiling_purpose)
    assert "Automated decisions and profiling" in page and "No usage profile of you is held" in page
    assert profiling.purpose in page
    held = dataclasses.replace(result, zones=tuple(dataclasses.replace(z, rows=3) if z.zone == "marketing" else z
                                                   for z in result.zones))
    page = render_index(held, policy)
    assert "A usage profile of you is held" in page and "No usage profile" not in page
    assert "never to a legal obligation" in page and "home area" in page

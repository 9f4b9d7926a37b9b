"""The 3GPP TS 32.298 packet-switched export: the header the format reads, records shaped as the records'
fields are (TimeStamp YYMMDDhhmmss±hhmm, IMEISV, E.164 digits, hex location), the night's subscribers,
and rows that stage through ingest as the format says."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from sample_data.generate import RULE_VIOLATIONS, Population, generate_export, population_size
from sample_data.generate.formats import TS32298_PS
from transforms.bundled import BUILTIN_FORMATS
from transforms.formats import load_format, load_formats
from transforms.formats.model import deciding_columns, stored_columns
from transforms.formats.recognize import detect
from transforms.policy import load_policy
from transforms.steps.ingest import ingest_file

from .common import MAIN_FILES, NIGHT, PS_FILE, ROWS, SEED, _digests, _luhn_ok, _records

HOME_PLMN = "29340"                 # MCC 293 (Slovenia), MNC 40


def _rows(out) -> tuple[list[str], list[dict[str, str]]]:
    records = _records(out / PS_FILE)
    return records[0], [dict(zip(records[0], r)) for r in records[1:]]


def _defective(r: dict[str, str]) -> bool:
    """A record made to break a billing rule (the manifest counts them by kind)."""
    return (not r["servedMSISDN"].isdigit() or r["duration"].startswith("-") or not r["servedIMSI"].isdigit()
            or r["recordType"] not in ("sGWRecord", "pGWRecord", "84", "85") or len(r["accessPointNameNI"]) > 100)


def _opening(value: str) -> datetime:
    """A TS 32.298 TimeStamp: YYMMDDhhmmss, then the offset from UTC as ±hhmm."""
    return datetime.strptime(value, "%y%m%d%H%M%S%z")


def _check_digit(body14: str) -> str:
    return next(d for d in "0123456789" if _luhn_ok(body14 + d))


# --------------------------------------------------------------------------- the file

def test_header_is_what_the_format_reads(ps_export):
    out, _ = ps_export
    header, _ = _rows(out)
    assert tuple(header) == TS32298_PS.columns
    fmt = load_format(BUILTIN_FORMATS / "ts32298_ps.yaml", load_policy())
    read = set().union(*(stored_columns(d) | deciding_columns(d) for _, d in fmt.map))
    assert read <= set(header), "every field the format maps or decides by is written"
    assert set(header) - read <= set(fmt.not_allowed), "every other field is one the format lists as off-list"
    assert {"subscriberName", "servedPDPPDNAddress", "chargingID", "causeForRecClosing", "rATType"} <= set(header)


def test_only_the_export_is_written_and_counted(ps_export):
    out, manifest = ps_export
    assert [p.name for p in out.iterdir()] == [PS_FILE] == list(manifest.files)
    f = manifest.files[PS_FILE]
    _, rows = _rows(out)
    assert f.profile == "ts32298_ps" and f.rows == len(rows) == ROWS == manifest.rows
    assert not set(f.defects) & {"too_few_fields", "too_many_fields", "unterminated_quote"}
    assert sum(_defective(r) for r in rows) == sum(f.defects.get(k, 0) for k in RULE_VIOLATIONS) > 0
    assert f.defects.get("duplicate_row", 0) > 0


def test_records_are_shaped_as_the_fields_are(ps_export):
    out, _ = ps_export
    _, rows = _rows(out)
    rows = [r for r in rows if not _defective(r)]
    types = {r["recordType"] for r in rows}
    assert {"sGWRecord", "pGWRecord"} <= types and types & {"84", "85"}, "names, and a few ASN.1 numbers"
    for r in rows:
        assert re.fullmatch(r"386\d{8}", r["servedMSISDN"]), "E.164 digits, no '+'"
        assert re.fullmatch(r"29340\d{10}", r["servedIMSI"])
        assert r["servedIMEISV"] == "" or re.fullmatch(r"\d{16}", r["servedIMEISV"])
        assert re.fullmatch(r"[0-9A-F]{4}", r["locationAreaCode"]) and re.fullmatch(r"[0-9A-F]{7}", r["cellIdentifier"])
        assert re.fullmatch(r"\d{5,6}", r["servingNodePLMNIdentifier"])
        assert re.fullmatch(r"\d{12}[+-]\d{4}", r["recordOpeningTime"])
        assert int(r["duration"]) >= 0 and int(r["dataVolumeGPRSUplink"]) >= 0 and int(r["dataVolumeGPRSDownlink"]) > 0
        assert r["accessPointNameNI"] and re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", r["servedPDPPDNAddress"])
        assert r["subscriberName"] and r["chargingID"].isdigit() and r["rATType"].isdigit()
    assert sum(r["servedIMEISV"] != "" for r in rows) > 0.9 * len(rows)
    plmns = [r["servingNodePLMNIdentifier"] for r in rows]
    assert plmns.count(HOME_PLMN) > 0.6 * len(rows) and len(set(plmns)) > 1, "mostly at home, some roaming"


def test_opening_times_are_the_nights_with_mixed_offsets(ps_export):
    out, _ = ps_export
    _, rows = _rows(out)
    # 22 November 2026 in Ljubljana (UTC+1 in winter) is 21 Nov 23:00 UTC to 22 Nov 23:00 UTC.
    day_start = datetime(2026, 11, 21, 23, 0, tzinfo=timezone.utc)
    offsets = {r["recordOpeningTime"][12:] for r in rows}
    assert offsets == {"+0100", "+0000"}, "nodes on local time and nodes on UTC"
    for r in rows:
        assert day_start <= _opening(r["recordOpeningTime"]) < day_start + timedelta(days=1)


def test_the_nights_subscribers_in_the_networks_they_roam_in_tonight(ps_export, night):
    out, manifest = ps_export
    _, rows = _rows(out)
    pop = Population.build(SEED, population_size(ROWS))
    imsi_of = dict(zip(pop.msisdn.to_pylist(), pop.imsi.to_pylist()))
    imei_of = dict(zip(pop.msisdn.to_pylist(), pop.imei.to_pylist()))
    assert manifest.subscribers == night[1].subscribers == pop.size
    for r in (r for r in rows if not _defective(r)):
        number = "+" + r["servedMSISDN"]
        assert imsi_of[number] == r["servedIMSI"]
        if r["servedIMEISV"]:       # IMEI = TAC + SNR + check digit; IMEISV = TAC + SNR + SVN
            assert r["servedIMEISV"][:14] == imei_of[number][:14]
    # One person is in one visited network on one night, whichever export shows it.
    med = _records(night[0] / MAIN_FILES[0])
    med_rows = [dict(zip(med[0], m)) for m in med[1:] if len(m) == len(med[0])]

    def visited(records, number_of):
        out: dict[str, set[str]] = {}
        for r in records:
            plmn = r["servingNodePLMNIdentifier"]
            if plmn and plmn != HOME_PLMN:
                out.setdefault(number_of(r), set()).add(plmn)
        return out

    ps_visited = visited((r for r in rows if not _defective(r)), lambda r: "+" + r["servedMSISDN"])
    med_visited = visited(med_rows, lambda r: r["servedMSISDN"])
    both = set(ps_visited) & set(med_visited)
    assert both, "someone roams in both exports"
    assert all(len(v) == 1 for v in ps_visited.values())
    assert all(ps_visited[n] == med_visited[n] for n in both)


def test_same_arguments_same_bytes_and_refusals(ps_export, tmp_path):
    out, manifest = ps_export
    assert generate_export(tmp_path, "ts32298_ps", ROWS, SEED, NIGHT) == manifest
    assert _digests(tmp_path) == _digests(out)
    with pytest.raises(ValueError):
        generate_export(tmp_path, "ts32298_cs", ROWS, SEED, NIGHT)


# --------------------------------------------------------------------------- through the format

def test_recognised_and_staged_as_the_format_says(ps_export, tmp_path):
    out, manifest = ps_export
    policy = load_policy()
    formats = load_formats(policy)
    path = out / PS_FILE
    assert detect(path.read_bytes()[: 1 << 16], formats, policy).format.name == "ts32298_ps"
    result = ingest_file(path, policy, formats, tmp_path / "work")
    assert (result.status, result.profile) == ("staged", "ts32298_ps")
    assert (result.rows_read, result.rows_staged, result.rows_unparseable) == (ROWS, ROWS, 0)

    _, rows = _rows(out)
    con = duckdb.connect()     # its own connection: the module's default one may hold another test's result
    try:
        staged = con.execute(
            "SELECT origin_number, direction, start_time, duration_s, service_type, data_volume_bytes, apn, cell_id,"
            " location_area, imsi, imei, origin_network, service_area FROM read_parquet($p)",
            {"p": result.staged_path}).fetchall()
    finally:
        con.close()
    assert len(staged) == len(rows)
    checked = 0
    for r, s in zip(rows, staged):
        if _defective(r):
            continue
        (origin, direction, start, duration, service, volume, apn, cell, area, imsi, imei, network, where) = s
        assert origin == "+" + r["servedMSISDN"]
        assert (direction, service) == ("outgoing", "data")
        assert start == _opening(r["recordOpeningTime"]).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        assert duration == r["duration"] and apn == r["accessPointNameNI"] and imsi == r["servedIMSI"]
        assert volume == str(int(r["dataVolumeGPRSUplink"]) + int(r["dataVolumeGPRSDownlink"]))
        assert cell == str(int(r["cellIdentifier"], 16)) and area == str(int(r["locationAreaCode"], 16))
        if r["servedIMEISV"]:
            body = r["servedIMEISV"][:14]
            assert imei == body + _check_digit(body) and _luhn_ok(imei)
        else:
            assert imei is None
        assert network == r["servingNodePLMNIdentifier"]
        assert where == ("home" if network == HOME_PLMN else "roaming")
        checked += 1
    assert checked > 0.95 * ROWS

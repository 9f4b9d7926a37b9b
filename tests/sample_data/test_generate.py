"""The sample-data generator: determinism, counts, identifier shapes, defects, shared subscribers."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sample_data.generate import (
    ALL_DEFECT_KINDS,
    HOSTILE_COLUMNS,
    MIN_ROWS,
    PAYMENT_DEFECTS,
    NightManifest,
    Population,
    generate_night,
    main,
    population_size,
)
from transforms.profiles import CANONICAL_COLUMNS, MEDIATION, PAYMENTS_COLUMNS, PAYMENTS_PROFILE, detect, is_payments_header

ROWS, SEED = 600, 11
NIGHT = date(2026, 11, 22)
T = NIGHT.isoformat()
SUITE = Path(__file__).resolve().parents[2] / "expectations" / "billing_cdr.json"
MAIN_FILES = (f"mediation_{T}.csv", f"billing_{T}.csv", f"billing_{T}.parquet", f"asterisk_Master_{T}.csv",
              f"freeswitch_{T}.csv")
DEFECT_FILES = (f"empty_{T}.csv", f"header_only_{T}.csv", f"latin1_{T}.csv", f"billing_{T}_copy.csv",
                f"freeswitch_resaved_{T}.csv", f"nul_byte_{T}.csv", f"hostile_header_{T}.csv")
PAYMENTS_FILE = f"payments_{T}.csv"


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> tuple[Path, NightManifest]:
    out = tmp_path_factory.mktemp("night_a")
    return out, generate_night(out, ROWS, SEED, NIGHT)


@pytest.fixture(scope="module")
def other_night(tmp_path_factory) -> tuple[Path, NightManifest]:
    """Same seed, another date and size."""
    out = tmp_path_factory.mktemp("night_b")
    return out, generate_night(out, 2 * ROWS, SEED, date(2026, 11, 23))


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _records(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    text = path.read_bytes().decode(encoding)
    return list(csv.reader(io.StringIO(text, newline="")))


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# --------------------------------------------------------------------------- determinism

def test_same_seed_gives_identical_bytes(night, tmp_path):
    out, manifest = night
    again = generate_night(tmp_path, ROWS, SEED, NIGHT)
    assert _digests(tmp_path) == _digests(out)
    assert again == manifest


def test_rerun_into_same_folder_overwrites_identically(night):
    out, manifest = night
    before = _digests(out)
    assert generate_night(out, ROWS, SEED, NIGHT) == manifest
    assert _digests(out) == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_another_seed_gives_other_subscribers(night, tmp_path):
    _, manifest = night
    other = generate_night(tmp_path, ROWS, SEED + 1, NIGHT)
    assert not set(other.msisdns) & set(manifest.msisdns)


# --------------------------------------------------------------------------- counts

def test_files_present_and_listed(night):
    out, manifest = night
    names = {p.name for p in out.iterdir()}
    assert set(MAIN_FILES) | set(DEFECT_FILES) | {PAYMENTS_FILE} == names == set(manifest.files)


def test_main_files_add_up_to_rows(night):
    _, manifest = night
    assert sum(manifest.files[n].rows for n in MAIN_FILES) == ROWS == manifest.rows


def test_row_counts_match_manifest(night):
    out, manifest = night
    for name, f in manifest.files.items():
        path = out / name
        assert f.bytes == path.stat().st_size, name
        if name.endswith(".parquet"):
            assert pq.read_metadata(path).num_rows == f.rows
            continue
        encoding = "cp1250" if name.startswith("latin1_") else "utf-8"
        records = _records(path, encoding)
        header = 0 if (f.profile in (None, "asterisk_master_18", "freeswitch_cdr_csv")) else 1
        assert len(records) - header == f.rows, name


def test_every_defect_kind_is_injected(night):
    _, manifest = night
    for kind in ALL_DEFECT_KINDS:
        assert manifest.defect_count(kind) >= 1, kind
    assert manifest.files[f"mediation_{T}.csv"].defects.keys() >= {
        "too_few_fields", "too_many_fields", "unterminated_quote", "overlong_field", "email_as_origin",
        "negative_duration", "unknown_service_type", "bad_imsi", "duplicate_row"}


def test_defects_are_a_small_fraction(tmp_path):
    manifest = generate_night(tmp_path, 20_000, SEED, NIGHT)
    defect_rows = sum(v for n in MAIN_FILES for k, v in manifest.files[n].defects.items())
    assert defect_rows / manifest.rows < 0.01


def test_profiles_detected_as_manifest_says(night):
    out, manifest = night
    for name, f in manifest.files.items():
        path = out / name
        if f.profile == PAYMENTS_PROFILE:       # not a CDR format: the payments step takes it by its header
            assert is_payments_header(path.read_bytes()[: 1 << 16]) and detect(path.read_bytes()).profile is None
            continue
        if name.endswith(".parquet"):
            got = detect(b"", is_parquet_columns=tuple(pq.read_schema(path).names))
        else:
            got = detect(path.read_bytes()[: 1 << 16])
        assert (got.profile.name if got.profile else None) == f.profile, name


# --------------------------------------------------------------------------- rows obey the suite

def _rule_checks() -> list[tuple[str, callable]]:
    """Row predicates (True = row fails) from the GX suite, written independently of the pipeline."""
    checks = []
    for exp in json.loads(SUITE.read_text())["expectations"]:
        kind, kw, rule = exp["type"], exp["kwargs"], exp["meta"]["rule"]
        col = kw["column"]
        if kind == "expect_column_values_to_not_be_null":
            checks.append((rule, lambda r, c=col: not r[c]))
        elif kind == "expect_column_values_to_match_regex":
            rx = re.compile(kw["regex"])
            checks.append((rule, lambda r, c=col, rx=rx: bool(r[c]) and not rx.search(r[c])))
        elif kind == "expect_column_values_to_be_in_set":
            checks.append((rule, lambda r, c=col, s=set(kw["value_set"]): bool(r[c]) and r[c] not in s))
        elif col == "start_time":
            lo, hi = kw["min_value"], kw["max_value"]
            checks.append((rule, lambda r, lo=lo, hi=hi: bool(r["start_time"]) and not (
                lo <= r["start_time"].replace("T", " ").rstrip("Z") <= hi)))
        else:
            lo, hi = float(kw["min_value"]), float(kw["max_value"])
            checks.append((rule, lambda r, c=col, lo=lo, hi=hi: bool(r[c]) and not lo <= float(r[c]) <= hi))
    return checks


def test_canonical_csv_rows_valid_except_injected(night):
    out, manifest = night
    f = manifest.files[f"billing_{T}.csv"]
    records = _records(out / f.name)
    header, rows = records[0], records[1:]
    assert set(CANONICAL_COLUMNS) <= set(header) and {"caller_name", "email", "ip_address"} <= set(header)
    shaped = [dict(zip(header, r)) for r in rows if len(r) == len(header)]
    malformed = len(rows) - len(shaped)
    assert malformed == f.defects["too_few_fields"] + f.defects["too_many_fields"] + f.defects["unterminated_quote"]
    checks = _rule_checks()
    failing = sum(1 for r in shaped if any(fails(r) for _, fails in checks))
    rule_kinds = ("email_as_origin", "negative_duration", "unknown_service_type", "bad_imsi", "overlong_field")
    assert failing == sum(f.defects[k] for k in rule_kinds)
    canon = [tuple(r[c] for c in CANONICAL_COLUMNS) for r in shaped]
    assert len(canon) - len(set(canon)) == f.defects["duplicate_row"]


def test_mediation_rows_look_real(night):
    out, manifest = night
    records = _records(out / f"mediation_{T}.csv")
    assert tuple(records[0]) == MEDIATION.columns
    rows = [dict(zip(records[0], r)) for r in records[1:] if len(r) == len(records[0])
            and not r[7].startswith("-") and r[0] != "LCS" and len(r[14]) < 100]    # valid rows only
    assert {r["recordType"] for r in rows} >= {"MOC", "MTC", "SMSO", "SMST", "PGW"}
    plmns = {r["servingNodePLMNIdentifier"] for r in rows}
    assert "29340" in plmns and len(plmns) > 2, "home and roaming networks"
    assert sum(r["servingNodePLMNIdentifier"] == "29340" for r in rows) > 0.6 * len(rows), "mostly at home"
    for r in rows:
        assert re.fullmatch(r"2026-11-2[12]T\d\d:\d\d:\d\d\+01:00", r["recordOpeningTime"])
        if r["recordType"] in ("SMSO", "SMST"):
            assert r["callDuration"] == "0"
        if r["recordType"] == "PGW":
            assert r["accessPointName"] and int(r["dataVolumeDownlink"]) >= 0
            assert re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", r["servedPDPAddress"])
        if r["chargedAmount"]:
            assert abs(float(r["taxAmount"]) - 0.22 * float(r["chargedAmount"])) < 0.0001
        assert r["currency"] == "EUR"
        assert re.fullmatch(r"[0-9A-F]{4}", r["locationAreaCode"]) and re.fullmatch(r"[0-9A-F]{7}", r["cellIdentifier"])


def test_roaming_inside_and_outside_eu(tmp_path):
    from sample_data.generate import C_EU, COUNTRIES
    eu = {p for c, is_eu in zip(COUNTRIES, C_EU) if is_eu for p in c[6]}
    non_eu = {p for c, is_eu in zip(COUNTRIES, C_EU) if not is_eu for p in c[6]}
    manifest = generate_night(tmp_path, 4000, 5, NIGHT)
    records = _records(tmp_path / f"mediation_{T}.csv")
    plmns = {r[10] for r in records[1:] if len(r) == len(records[0])}
    assert plmns & eu and plmns & non_eu and "29340" in plmns
    assert manifest.subscribers == population_size(4000)


# --------------------------------------------------------------------------- identifiers

def test_identifier_shapes(night):
    _, manifest = night
    assert manifest.msisdns and manifest.imsis and manifest.imeis and manifest.cell_ids
    for m in manifest.msisdns:
        assert re.fullmatch(r"\+386(40|41|31|51|70|68|69|64|65)\d{6}", m), m
    for i in manifest.imsis:
        assert re.fullmatch(r"29340\d{10}", i), i
    for e in manifest.imeis:
        assert re.fullmatch(r"\d{15}", e) and _luhn_ok(e), e
    for c in manifest.cell_ids:
        assert re.fullmatch(r"[0-9A-F]{7}", c), c


def test_population_identifiers_unique_and_valid():
    pop = Population.build(SEED, 20_000)
    msisdns, imsis, imeis = pop.msisdn.to_pylist(), pop.imsi.to_pylist(), pop.imei.to_pylist()
    assert len(set(msisdns)) == len(set(imsis)) == len(set(imeis)) == 20_000
    assert all(_luhn_ok(e) for e in imeis)
    assert all(i.startswith("29340") and len(i) == 15 for i in imsis)


def test_population_depends_on_seed_only():
    small, big = Population.build(SEED, 50), Population.build(SEED, 5_000)
    assert small.msisdn.to_pylist() == big.msisdn.to_pylist()[:50]
    assert small.imei.to_pylist() == big.imei.to_pylist()[:50]
    assert small.name.to_pylist() == big.name.to_pylist()[:50]


def test_nights_with_same_seed_share_subscribers(night, other_night):
    (out_a, a), (out_b, b) = night, other_night
    shared = set(a.msisdns) & set(b.msisdns)
    assert len(shared) >= 10

    def identities(out: Path, day: str) -> dict[str, tuple[str, str]]:
        records = _records(out / f"mediation_{day}.csv")
        return {r[1]: (r[2], r[3]) for r in records[1:] if len(r) == len(records[0]) and r[1].startswith("+")}

    ida, idb = identities(out_a, T), identities(out_b, "2026-11-23")
    common = set(ida) & set(idb)
    assert len(common) >= 10
    assert all(ida[m] == idb[m] for m in common), "a subscriber keeps IMSI and IMEI across nights"


# --------------------------------------------------------------------------- sensitive values

def test_all_not_allowed_values_are_in_manifest(night):
    out, manifest = night
    names, emails, ips = set(manifest.caller_names), set(manifest.emails), set(manifest.ip_addresses)
    records = _records(out / f"billing_{T}.csv")
    header = records[0]
    for r in records[1:]:
        row = dict(zip(header, r))
        if len(r) == len(header):
            assert row["caller_name"] in names and row["email"] in emails
            assert not row["ip_address"] or row["ip_address"] in ips
    med = _records(out / f"mediation_{T}.csv")
    for r in med[1:]:
        if len(r) > 16 and r[16]:
            assert r[16] in ips
    for r in _records(out / f"asterisk_Master_{T}.csv"):
        if len(r) > 4:
            assert re.fullmatch(r'"(.*)" <.*>', r[4]).group(1) in names
    for r in _records(out / f"freeswitch_{T}.csv"):
        assert r[0] in names
        if "@" in r[1]:
            assert r[1] in emails
    assert "Žiga Čeh" in names


def test_manifest_values_were_written(night):
    out, manifest = night
    text = "".join(p.read_bytes().decode("utf-8", errors="replace") for p in out.iterdir()
                   if p.suffix == ".csv")
    text += (out / f"latin1_{T}.csv").read_bytes().decode("cp1250")
    text += str(pq.read_table(out / f"billing_{T}.parquet").to_pylist())
    for values in (manifest.msisdns, manifest.imsis, manifest.imeis, manifest.caller_names, manifest.emails,
                   manifest.ip_addresses, manifest.cell_ids, manifest.payment_msisdns, manifest.account_ids):
        assert values
        assert all(v in text for v in values)


# --------------------------------------------------------------------------- defect files

def test_defect_files(night):
    out, manifest = night
    assert (out / f"empty_{T}.csv").stat().st_size == 0
    assert (out / f"header_only_{T}.csv").read_text().splitlines() == [",".join(CANONICAL_COLUMNS)]
    latin1 = (out / f"latin1_{T}.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        latin1.decode("utf-8")
    assert "Žiga Čeh" in latin1.decode("cp1250")
    assert (out / f"billing_{T}_copy.csv").read_bytes() == (out / f"billing_{T}.csv").read_bytes()
    assert b"\x00" in (out / f"nul_byte_{T}.csv").read_bytes()
    hostile = _records(out / f"hostile_header_{T}.csv")[0]
    assert set(HOSTILE_COLUMNS) <= set(hostile)
    assert any(len(c) > 1000 for c in hostile) and 'x"; DROP TABLE runs; --' in hostile
    resaved = (out / f"freeswitch_resaved_{T}.csv").read_bytes()
    assert b'"' not in resaved and b"\r\n" in resaved
    rows = _records(out / f"freeswitch_resaved_{T}.csv")
    assert all(len(r) == 15 and re.fullmatch(r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}", r[4]) for r in rows)
    assert len(rows) - len({tuple(r) for r in rows}) == manifest.files[f"freeswitch_resaved_{T}.csv"].defects[
        "duplicate_row"]


def test_overlong_field_and_cut_record(night):
    out, _ = night
    for name in (f"mediation_{T}.csv", f"billing_{T}.csv"):
        data = (out / name).read_bytes()
        assert max(len(line) for line in data.split(b"\n")) > 100_000
        last = data.rsplit(b"\n", 1)[1]
        assert last and last.count(b'"') % 2 == 1, "ends inside an open quote"


def test_asterisk_and_freeswitch_shape(night):
    out, _ = night
    ast = (out / f"asterisk_Master_{T}.csv").read_text().splitlines()
    first = next(csv.reader([ast[0]]))
    assert len(first) == 18 and re.fullmatch(r"2026-11-2[12] \d\d:\d\d:\d\d", first[9])
    assert first[3] in ("from-pstn", "from-internal") and re.fullmatch(r'".*" <.+>', first[4])
    assert re.search(r',\d+,\d+,"', ast[0]), "duration and billsec bare, text quoted"
    fs = (out / f"freeswitch_{T}.csv").read_text().splitlines()
    assert all(line.startswith('"') and line.endswith('"') for line in fs)
    assert len(next(csv.reader([fs[0]]))) == 15


# --------------------------------------------------------------------------- payments extract

def _payments(out: Path, day: str = T) -> list[dict[str, str]]:
    records = _records(out / f"payments_{day}.csv")
    assert tuple(records[0]) == PAYMENTS_COLUMNS
    return [dict(zip(records[0], r)) for r in records[1:]]


def _iso(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


def test_payments_one_invoice_per_postpaid_subscriber_and_period(night):
    out, manifest = night
    rows = _payments(out)
    assert len(rows) == manifest.files[PAYMENTS_FILE].rows
    pop = Population.build(SEED, population_size(ROWS))
    postpaid = set(pc_take(pop.msisdn, ~pop.prepaid))
    assert {r["subscriber_number"] for r in rows} == postpaid          # E.164, as the CDRs spell it
    pairs = {(r["subscriber_number"], r["billing_period"]) for r in rows}
    assert len(pairs) == 3 * len(postpaid) == len(rows) - 1            # plus the row delivered twice
    assert {r["billing_period"] for r in rows} == {"2026-08", "2026-09", "2026-10"}   # 3 months before November


def pc_take(arr, mask) -> list[str]:
    return [v for v, keep in zip(arr.to_pylist(), mask) if keep]


def test_payments_rows_follow_the_invoice_rules_except_the_injected_ones(night):
    out, manifest = night
    rows = _payments(out)
    failing = 0
    for r in rows:
        year, month = map(int, r["billing_period"].split("-"))
        issued = date(year + month // 12, month % 12 + 1, 3)
        invoice_date, due, paid = _iso(r["invoice_date"]), _iso(r["due_date"]), _iso(r["paid_date"])
        ok = (bool(r["invoice_id"]) and invoice_date == issued and due is not None and (due - issued).days == 15
              and r["status"] in ("paid", "open", "partially_paid", "disputed")
              and r["claim_type"] in ("consumer_services", "business_services"))
        if ok and r["status"] == "paid":
            ok = paid is not None and issued < paid <= NIGHT and r["amount_paid"] == r["amount_due"]
        if ok and r["status"] == "partially_paid":
            ok = paid is not None and 0 < float(r["amount_paid"]) < float(r["amount_due"])
        if ok and r["status"] in ("open", "disputed"):
            ok = r["paid_date"] == "" and float(r["amount_paid"]) == 0
        failing += not ok
    defects = manifest.files[PAYMENTS_FILE].defects
    assert defects == {k: 1 for k in PAYMENT_DEFECTS}
    assert failing == defects["bad_payment_date"] + defects["bad_payment_status"] + defects["missing_invoice_id"]
    as_tuples = [tuple(r.values()) for r in rows]
    assert len(as_tuples) - len(set(as_tuples)) == defects["duplicate_invoice"]
    ids = [r["invoice_id"] for r in rows if r["invoice_id"]]
    assert len(ids) - len(set(ids)) == defects["duplicate_invoice"]
    assert sum(r["status"] == "settled" for r in rows) == 1 and sum(r["invoice_id"] == "" for r in rows) == 1


def test_payments_statuses_claim_types_and_accounts(night, other_night):
    (out_a, _), (out_b, _) = night, other_night
    rows = _payments(out_a)
    statuses = [r["status"] for r in rows]
    assert {"paid", "open", "partially_paid", "disputed"} <= set(statuses)
    assert statuses.count("paid") > len(rows) / 2 > statuses.count("open")
    assert statuses.count("partially_paid") < len(rows) / 10 and statuses.count("disputed") < len(rows) / 10
    claims = [r["claim_type"] for r in rows]
    assert set(claims) == {"consumer_services", "business_services"}
    assert claims.count("consumer_services") > claims.count("business_services")
    account_of: dict[str, set[str]] = {}
    for day, out in ((T, out_a), ("2026-11-23", out_b)):
        for r in _payments(out, day):
            assert re.fullmatch(r"ACC-\d{8}", r["account_id"])
            account_of.setdefault(r["subscriber_number"], set()).add(r["account_id"])
    assert all(len(a) == 1 for a in account_of.values()), "an account per subscriber, the same every night"
    holders: dict[str, set[str]] = {}
    for r in rows:
        holders.setdefault(r["account_id"], set()).add(r["subscriber_number"])
    shared = [a for a, subs in holders.items() if len(subs) > 1]
    assert shared and all(r["claim_type"] == "business_services" for r in rows if r["account_id"] in shared)


# --------------------------------------------------------------------------- CLI

def test_cli_help_documents_everything(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--rows", "--out", "--seed", "--date", "--quiet", "--manifest", "mediation_", "asterisk_Master_",
                 "freeswitch_resaved_", "latin1_", "nul_byte_", "hostile_header_", "unterminated_quote",
                 "duplicate_row", "email_as_origin", "payments_", "duplicate_invoice", "bad_payment_status"):
        assert word in text, word


def test_cli_writes_night_and_manifest(tmp_path, capsys):
    assert main(["--rows", str(MIN_ROWS), "--out", str(tmp_path / "n"), "--seed", "3", "--date", "2026-03-29",
                 "--manifest", str(tmp_path / "m.json"), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["night"] == "2026-03-29" and doc["rows"] == MIN_ROWS
    med = _records(tmp_path / "n" / "mediation_2026-03-29.csv")
    offsets = {r[6][-6:] for r in med[1:] if len(r) == len(med[0])}
    assert offsets <= {"+01:00", "+02:00"}, "DST day: both offsets are possible"


def test_too_few_rows_refused(tmp_path):
    with pytest.raises(ValueError):
        generate_night(tmp_path, MIN_ROWS - 1, SEED, NIGHT)

"""transforms/nightly/audit_file.py: one file through every step; a failure leaves nothing in any zone."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import re
from pathlib import Path

import duckdb
import zstandard

from tests.transforms.nightly.conftest import CSV, ROW
from transforms.lake import Lake
from transforms.nightly import audit_file as audit_file_module
from transforms.nightly.audit_file import audit_file
from transforms.nightly.facts import read_file_facts
from transforms.nightly.close import close_night
from transforms.nightly.plan import plan_night
from transforms.privacy.keys import demo_keyring
from transforms.runs import night_subject
from transforms.runs.lease import release


def test_a_clean_file_leaves_its_rows_and_its_facts(landing, tmp_path, policy, formats):
    (landing / "a.csv").write_bytes(CSV + ROW * 3)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    row = audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22", keyring=demo_keyring())
    # Three identical rows: the first loads, the two repeats are quarantined as duplicates.
    assert (row.status, row.rows_read, row.rows_loaded, row.rows_rejected) == ("loaded", 3, 1, 2)
    assert (row.rows_failing, row.rows_duplicate, row.rows_unparseable) == (0, 2, 0)
    # Dated on the night itself: nothing late, nothing after it, counted with the policy's window.
    assert (row.lateness_window_days, row.rows_before_lateness_window, row.rows_after_night) == (7, 0, 0)
    facts = read_file_facts(lake, "r1", plan.to_audit[0])
    assert facts.source_file == row
    assert [(r.reason, r.rows) for r in facts.rejection_reasons] == [("duplicate_row", 2)]
    assert [f.source_column for f in facts.field_findings] == ["origin_number", "destination_number", "direction",
                                                              "start_time", "duration_s", "service_type"]
    # Every column the policy tokenizes is logged, with the distinct identifiers this file had in it.
    assert {p.column_name: p.distinct_values for p in facts.pseudonymization_log} == {
        "origin_number": 1, "destination_number": 1, "redirection_number": 0, "imsi": 0}
    assert facts.analytics_event_dates == ("2026-11-22",)
    assert len(list(lake.zone("billing").rglob("*.parquet"))) == 1


def test_a_file_failing_after_its_billing_commit_leaves_no_rows_behind(landing, tmp_path, policy, monkeypatch, formats):
    (landing / "a.csv").write_bytes(CSV + ROW * 3)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")        # analytics fails after billing committed the rows
    monkeypatch.setattr(audit_file_module, "build_analytics", broken)
    result = audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22",
                                keyring=demo_keyring())
    assert (result.status, result.rows_loaded) == ("failed", 0)
    # The audit says nothing was loaded, so no zone may hold the file's rows.
    assert list(lake.zone("billing").rglob("*.parquet")) == []
    assert list(lake.zone("quarantine").rglob("*.parquet")) == []
    assert (lake.zone("audit") / "errors" / "r1").is_dir()


def _row(start: str, duration: str = "10", number: str = "+38640111222") -> bytes:
    return f"{number},+38641333444,outgoing,{start},{duration},call\n".encode()


def _audit_one(landing, tmp_path, policy, formats, content: bytes, run_id: str = "r1"):
    (landing / "a.csv").write_bytes(content)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id=run_id, trigger="test")
    return lake, audit_file(plan.to_audit[0], lake, policy, formats, run_id=run_id, night="2026-11-22",
                            keyring=demo_keyring())


def test_each_row_not_loaded_is_counted_once_by_why(landing, tmp_path, policy, formats):
    rows = [
        _row("2026-11-22T10:00:00Z"),                       # valid
        _row("2026-11-22T11:00:00Z", duration="-5"),        # fails duration_s_range
        _row("2026-11-22T11:00:00Z", duration="-5"),        # repeats the row before: a duplicate, whatever else
        _row("2026-11-22T12:00:00Z"),                       # valid
        _row("2026-11-22T10:00:00Z"),                       # repeats the first row: a duplicate
        b"+38640111222,only,three\n",                      # too few fields: unparseable
    ]
    _, row = _audit_one(landing, tmp_path, policy, formats, CSV + b"".join(rows))
    assert (row.status, row.rows_read, row.rows_loaded, row.rows_rejected) == ("loaded", 6, 2, 4)
    assert (row.rows_failing, row.rows_duplicate, row.rows_unparseable) == (1, 2, 1)
    assert row.rows_read == row.rows_loaded + row.rows_failing + row.rows_duplicate + row.rows_unparseable


def test_a_file_that_loads_no_row_is_quarantined_not_loaded(landing, tmp_path, policy, formats):
    rows = [_row("2026-11-22T10:00:00Z", duration="-1"), _row("2026-11-22T11:00:00Z", number="someone@example.com")]
    lake, row = _audit_one(landing, tmp_path, policy, formats, CSV + b"".join(rows))
    assert (row.status, row.rows_read, row.rows_loaded, row.rows_rejected) == ("quarantined", 2, 0, 2)
    assert (row.rows_failing, row.rows_duplicate, row.rows_unparseable) == (2, 0, 0)
    # Its rows are in quarantine (that is where they are kept), none in billing.
    assert list(lake.zone("billing").rglob("*.parquet")) == [] and list(lake.zone("quarantine").rglob("*.parquet"))


def test_rows_dated_before_the_lateness_window_or_after_the_night_are_counted_and_loaded(landing, tmp_path, policy,
                                                                                         formats):
    # The night is 22 Nov and the policy's window 7 days (lateness.window_days): 14 Nov is more than the window
    # before it, 15 Nov exactly the window, 23 Nov after the night.
    assert policy.lateness.window_days == 7
    rows = [_row("2026-11-14T09:00:00Z"), _row("2026-11-14T10:00:00Z"), _row("2026-11-15T10:00:00Z"),
            _row("2026-11-22T10:00:00Z"), _row("2026-11-23T10:00:00Z")]
    lake, row = _audit_one(landing, tmp_path, policy, formats, CSV + b"".join(rows))
    assert (row.status, row.rows_loaded) == ("loaded", 5)            # loaded as delivered
    assert (row.lateness_window_days, row.rows_before_lateness_window, row.rows_after_night) == (7, 2, 1)
    days = sorted(p.parent.name for p in lake.zone("billing").rglob("*.parquet"))
    assert days == ["event_date=2026-11-14", "event_date=2026-11-15", "event_date=2026-11-22",
                    "event_date=2026-11-23"]


def test_a_refused_file_has_no_row_account_and_no_lateness(landing, tmp_path, policy, formats):
    _, row = _audit_one(landing, tmp_path, policy, formats, b"alpha;beta\n1;2\n")
    assert row.status == "rejected_file"
    assert (row.rows_failing, row.rows_duplicate, row.rows_unparseable, row.lateness_window_days) == (None,) * 4


# ---------------------------------------------------------------- names and bytes (docs/design.md §1)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "formats"


def _audit_night(landing, tmp_path, policy, formats, run_id="r1"):
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id=run_id, trigger="test")
    rows = {p.file_name: audit_file(p, lake, policy, formats, run_id=run_id, night="2026-11-22",
                                    keyring=demo_keyring()) for p in plan.to_audit}
    return lake, plan, rows


def _billing(lake, sha: str) -> list[tuple]:
    """A file's billing rows, lineage that names the file aside, in line order."""
    return duckdb.execute(
        "SELECT * EXCLUDE (record_id, source_file_sha256, run_id) FROM read_parquet($f, hive_partitioning = true)"
        " WHERE source_file_sha256 = $sha ORDER BY source_row",
        {"f": str(lake.zone("billing") / "**" / "*.parquet"), "sha": sha}).fetchall()


def _charging_id(plain: bytes, i: int) -> bytes:
    """The fixture with another charging id in its PGW record: a column the format does not keep, so the content
    differs (each delivery is one of its own) and the rows loaded do not."""
    assert plain.count(b",c9,") == 1
    return plain.replace(b",c9,", f",c{i},".encode())


def test_compressed_deliveries_load_the_rows_of_their_content(landing, tmp_path, policy, formats):
    plain = (FIXTURES / "mediation_3gpp_csv.csv").read_bytes()
    v = [_charging_id(plain, i) for i in range(6)]
    deliveries = {"m.csv": v[0], "m.csv.gz": gzip.compress(v[1], mtime=1),
                  "gzip_named.csv": gzip.compress(v[2], mtime=2),     # a gzip stream named .csv
                  "m.csv.bz2": bz2.compress(v[3]), "m.csv.zst": zstandard.ZstdCompressor().compress(v[4]),
                  "members.gz": gzip.compress(v[5][:400]) + gzip.compress(v[5][400:])}
    for name, data in deliveries.items():
        (landing / name).write_bytes(data)
    lake, plan, rows = _audit_night(landing, tmp_path, policy, formats)
    by_name = {p.file_name: p for p in plan.files}
    expected = _billing(lake, by_name["m.csv"].sha256)
    assert len(expected) == rows["m.csv"].rows_loaded == 2
    for name, data in deliveries.items():
        row, planned = rows[name], by_name[name]
        assert row.sha256 == hashlib.sha256(data).hexdigest() and row.bytes == len(data)   # the delivered bytes
        assert (row.status, row.profile, row.lines) == ("loaded", "mediation_3gpp_csv", rows["m.csv"].lines), name
        assert row.rows_read == row.rows_loaded + row.rows_rejected == rows["m.csv"].rows_read, name
        assert _billing(lake, planned.sha256) == expected, name
    assert {p.file_name: p.compression for p in plan.files} == {
        "m.csv": None, "m.csv.gz": "gzip", "gzip_named.csv": "gzip", "m.csv.bz2": "bzip2", "m.csv.zst": "zstd",
        "members.gz": "gzip"}
    close_night(lake, policy, run_id="r1")
    again = plan_night(landing, lake, policy, night="2026-11-22", run_id="r2", trigger="test")
    assert {p.action for p in again.files} == {"known"}    # known by the delivered bytes' sha256


def test_the_same_content_plain_and_compressed_is_one_delivery(landing, tmp_path, policy, formats):
    """A gzipped copy of a file, or one re-exported with CRLF endings, is a duplicate delivery like a byte-identical
    one: its rows are not loaded twice, in the same night (`duplicate_file`) or a later one (`known`), whichever
    form came first."""
    plain = (FIXTURES / "mediation_3gpp_csv.csv").read_bytes()
    (landing / "a.csv").write_bytes(plain)
    (landing / "b.csv.gz").write_bytes(gzip.compress(plain, mtime=1))
    (landing / "c.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(_charging_id(plain, 7)))   # another
    lake, plan, rows = _audit_night(landing, tmp_path, policy, formats)
    assert [(p.file_name, p.action) for p in plan.files] == [
        ("a.csv", "audit"), ("b.csv.gz", "duplicate_file"), ("c.csv.zst", "audit")]
    dup = plan.files[1]
    assert dup.reason == "the same content as a.csv (decompressed, line endings aside)"
    assert dup.duplicate_of == plan.files[0].sha256
    assert dup.content_sha256 == hashlib.sha256(plain).hexdigest() != dup.sha256
    summary = close_night(lake, policy, run_id="r1")
    assert (summary.rows_loaded, summary.rows_refused) == (4, rows["a.csv"].rows_read)
    # Later nights: the content is known in either form; the compressed file's content was recorded.
    for name, data in (("d.csv.bz2", bz2.compress(plain)), ("e.csv", _charging_id(plain, 7)),
                       ("f.csv", plain.replace(b"\n", b"\r\n"))):            # re-exported with CRLF endings
        later = tmp_path / name
        later.mkdir()
        (later / name).write_bytes(data)
        (planned,) = plan_night(later, lake, policy, night="2026-11-23", run_id=f"r-{name}", trigger="test").files
        assert (planned.action, planned.reason) == (
            "known", "same content (decompressed, line endings aside) already audited in an earlier run"), name
        close_night(lake, policy, run_id=f"r-{name}")


def test_a_broken_compressed_delivery_is_refused_whole_with_its_reason(landing, tmp_path, policy, formats):
    plain = (FIXTURES / "mediation_3gpp_csv.csv").read_bytes()
    header, record = plain.split(b"\n", 1)[0] + b"\n", plain.split(b"\n")[1] + b"\n"
    big = gzip.compress(header + b"".join(record.replace(b",60,", f",{i},".encode()) for i in range(30_000)))
    (landing / "cut.csv.gz").write_bytes(big[: len(big) // 2])
    (landing / "twice.csv.gz").write_bytes(gzip.compress(gzip.compress(plain)))
    (landing / "garbage.gz").write_bytes(gzip.compress(bytes(range(256)) * 64))
    lake, _, rows = _audit_night(landing, tmp_path, policy, formats)
    cut = rows["cut.csv.gz"]
    assert cut.status == "rejected_file" and re.fullmatch(r"gzip stream truncated after [\d,]+ line\(s\)", cut.reason)
    assert 0 < cut.rows_read == cut.rows_rejected == cut.lines and f"{cut.lines:,} line(s)" in cut.reason
    assert (rows["twice.csv.gz"].status, rows["twice.csv.gz"].reason) == (
        "rejected_file", "gzip stream holds a gzip stream (compressed twice); not read")
    assert rows["garbage.gz"].status == "rejected_file" and rows["garbage.gz"].reason
    for row in rows.values():
        assert row.rows_read == row.rows_loaded + row.rows_rejected and row.rows_loaded == 0
    facts = {p.name for p in lake.fragments_dir("r1").glob("file-*.json")}
    assert len(facts) == 3
    assert not [p for z in ("billing", "quarantine", "analytics") for p in lake.zone(z).rglob("*.parquet")]


def test_hostile_names_are_audited_as_their_own_bytes(landing, tmp_path, policy, formats):
    # DuckDB globs the path it is given: `*.csv` read as a path would read every file of the folder.
    names = {b"*.csv": 1, b"[ab].csv": 2, b"-rf.csv": 3, b"a\nb.csv": 4, b"ra\xe8un.csv": 5, b"b.csv": 6}
    for raw, n in names.items():
        rows = b"".join(_row(f"2026-11-22T{h:02d}:00:00Z") for h in range(n))
        with open(os.path.join(os.fsencode(landing), raw), "wb") as fh:
            fh.write(CSV + rows)
    _, _, rows = _audit_night(landing, tmp_path, policy, formats)
    assert {name: (r.status, r.rows_read, r.rows_loaded) for name, r in rows.items()} == {
        "*.csv": ("loaded", 1, 1), "[ab].csv": ("loaded", 2, 2), "-rf.csv": ("loaded", 3, 3),
        "a\\nb.csv": ("loaded", 4, 4), "ra\\xe8un.csv": ("loaded", 5, 5), "b.csv": ("loaded", 6, 6)}


def test_lone_cr_lines_are_counted_as_the_reader_splits_them(landing, tmp_path, policy, formats, monkeypatch):
    from transforms.nightly.close import close_night

    rows = CSV + _row("2026-11-22T10:00:00Z") + _row("2026-11-22T11:00:00Z") + _row("2026-11-22T12:00:00Z")
    unknown = b"alpha;beta\n1;2\n3;4\n5;6\n"
    binary = b"\x00\x01\x02\n\x03\x04\n\x05\x06\n"
    # Each form in a lake of its own: in one, the LF file would be the CR file's duplicate (the same content).
    lf_landing = tmp_path / "lf_landing"
    lf_landing.mkdir()
    for stem, data in (("rows", rows), ("unknown", unknown), ("binary", binary)):
        (lf_landing / f"{stem}_lf.csv").write_bytes(data)
        (landing / f"{stem}_cr.csv").write_bytes(data.replace(b"\n", b"\r"))
    lf_lake, lf_plan, out = _audit_night(lf_landing, tmp_path / "lf", policy, formats)
    lake, plan, cr_out = _audit_night(landing, tmp_path, policy, formats)
    out.update(cr_out)
    assert {p.file_name: p.line_endings for p in (*lf_plan.files, *plan.files)} == {
        **{f"{s}_lf.csv": "lf" for s in ("rows", "unknown", "binary")},
        **{f"{s}_cr.csv": "cr" for s in ("rows", "unknown", "binary")}}
    for stem, status, read in (("rows", "loaded", 3), ("unknown", "rejected_file", 3), ("binary", "rejected_file", 3)):
        lf, cr = out[f"{stem}_lf.csv"], out[f"{stem}_cr.csv"]
        assert (cr.status, cr.rows_read, cr.rows_loaded + cr.rows_rejected) == (status, read, read), stem
        assert (lf.status, lf.rows_read, lf.rows_loaded) == (cr.status, cr.rows_read, cr.rows_loaded), stem
    # A file whose task failed, or never finished, counts its lines the same way.
    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(audit_file_module, "ingest_file", broken)
    release(lake, night_subject("2026-11-22"), "r1")                 # r1 ends unclosed; r2 may take the night
    failed = {p.file_name: audit_file(p, lake, policy, formats, run_id="r2", night="2026-11-22",
                                      keyring=demo_keyring())
              for p in plan_night(landing, lake, policy, night="2026-11-22", run_id="r2", trigger="test").to_audit
              if p.file_name == "unknown_cr.csv"}
    assert (failed["unknown_cr.csv"].status, failed["unknown_cr.csv"].rows_read) == ("failed", 4)
    release(lake, night_subject("2026-11-22"), "r2")
    release(lf_lake, night_subject("2026-11-22"), "r1")
    unfinished = {}
    for land, lk in ((landing, lake), (lf_landing, lf_lake)):
        plan_night(land, lk, policy, night="2026-11-22", run_id="r3", trigger="test")
        close_night(lk, policy, run_id="r3")                         # no task ran: every file unfinished
        con = duckdb.connect(str(lk.audit_db), read_only=True)
        unfinished.update(con.execute("SELECT file_name, rows_read FROM source_files WHERE run_id = 'r3'").fetchall())
        con.close()
    assert unfinished["binary_cr.csv"] == unfinished["binary_lf.csv"] == 3
    assert unfinished["rows_cr.csv"] == unfinished["rows_lf.csv"] == 4

"""transforms/retention/rewrite.py: a file rewritten without its due rows, journaled; an emptied one removed."""

from __future__ import annotations

from datetime import date

import duckdb

from tests.transforms.retention.conftest import BUSINESS, KEYRING, LEAP, UNPAID
from transforms.lake.commit import sha256_file
from transforms.lake.connection import connect
from transforms.retention.catalog import check_catalog
from transforms.retention.journal import Journal
from transforms.retention.plan import plan_sweep
from transforms.retention.rewrite import rewrite


def test_rewrite_keeps_only_the_rows_not_due_and_records_the_evidence(golden_lake, policy, tmp_path):
    lake = golden_lake
    con = connect()
    plan = plan_sweep(con, lake, policy, KEYRING, check_catalog(lake, policy), [], date(2027, 4, 1), lambda _m: None)
    journal = Journal(lake.zone("audit") / "retention" / "2027-04-01" / "journal.json", lake.root)
    jobs = {j.partition: j for j in plan.jobs if j.dataset == "billing"}

    march = rewrite(con, lake, policy, jobs["event_date=2026-03-14"], journal, tmp_path / "evidence")
    path = lake.root / march["file"]
    assert march["state"] == "done" and march["after_sha256"] == sha256_file(path)
    assert duckdb.execute("SELECT list(origin_number) FROM read_parquet(?)", [str(path)]).fetchone()[0] == [BUSINESS]
    evidence = {i for (i,) in duckdb.execute("SELECT ident FROM read_parquet(?)", [march["evidence"]]).fetchall()}
    assert UNPAID in evidence and BUSINESS not in evidence          # only what the removed rows alone held
    # The journal holds the intent (with both digests) before the rename.
    assert journal.doc["files"][march["file"]]["before_sha256"] == march["before_sha256"]

    leap = rewrite(con, lake, policy, jobs["event_date=2024-02-29"], journal, tmp_path / "evidence")
    assert leap["evidence"] is None and not (lake.root / leap["file"]).exists()
    assert not (lake.zone("billing") / "event_date=2024-02-29").exists()   # the emptied partition goes too
    assert LEAP.encode() not in b"".join(p.read_bytes() for p in lake.zone("billing").rglob("*.parquet"))
    con.close()


def test_a_big_parts_evidence_is_taken_in_passes_with_the_same_identifiers(golden_lake, policy, tmp_path,
                                                                          monkeypatch):
    # A day's part of a big night holds more identifiers than one grouping takes in the memory ceiling: the
    # evidence is then gathered over disjoint hash ranges, and must be the same set, each identifier once.
    import transforms.retention.rewrite as rewrite_mod

    lake = golden_lake
    con = connect()
    plan = plan_sweep(con, lake, policy, KEYRING, check_catalog(lake, policy), [], date(2027, 4, 1), lambda _m: None)
    job = next(j for j in plan.jobs if j.partition == "event_date=2026-03-14" and j.dataset == "billing")
    journal = Journal(lake.zone("audit") / "retention" / "2027-04-01" / "journal.json", lake.root)
    monkeypatch.setattr(rewrite_mod, "EVIDENCE_ROWS_PER_PASS", 1)          # one pass per row of the part
    done = rewrite(con, lake, policy, job, journal, tmp_path / "evidence")
    idents = [i for (i,) in duckdb.execute("SELECT ident FROM read_parquet(?)", [done["evidence"]]).fetchall()]
    assert job.rows_before > 1 and UNPAID in idents and BUSINESS not in idents and len(idents) == len(set(idents))
    assert not list((tmp_path / "evidence").glob("*-*.parquet"))           # the passes' pieces are gone
    con.close()

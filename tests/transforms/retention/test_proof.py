"""transforms/retention/proof.py: removed identifiers are gone from the values and the bytes, and the proof
fails on a file that still holds one."""

from __future__ import annotations

import json

import duckdb

from tests.transforms.retention.conftest import BUSINESS, NO_INVOICE, UNPAID, run_sweep
from transforms.retention.proof import prove


def test_removed_identifiers_are_gone_from_the_bytes(golden_lake, policy):
    lake = golden_lake
    result = run_sweep(lake, policy, "2027-04-01")      # rewrites the March file: UNPAID and NO_INVOICE go
    rewritten = [p for p in result.proofs if p.outcome == "rewritten"]
    assert rewritten and all(p.ok for p in result.proofs) and all(p.identifiers_checked > 0 for p in rewritten)
    for path in lake.zone("billing").rglob("*.parquet"):
        data = path.read_bytes()
        assert UNPAID.encode() not in data and NO_INVOICE.encode() not in data
        values = duckdb.execute("SELECT list(origin_number) FROM read_parquet(?)", [str(path)]).fetchone()[0]
        assert UNPAID not in values and BUSINESS in values
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    assert con.execute("SELECT bool_and(ok), sum(identifiers_found) FROM retention_proofs").fetchone() == (True, 0)
    logged = con.execute("SELECT details FROM audit_log WHERE action = 'retention_sweep'").fetchone()[0]
    con.close()
    assert json.loads(logged)["rows"]["anonymized"] > 0
    assert UNPAID not in logged and "+386" not in logged      # counts, never values


def test_the_proof_finds_an_identifier_left_behind(lake, policy, tmp_path):
    # The proof is not a formality: a file still holding a removed number fails it.
    part = lake.zone("billing") / "event_date=2026-03-14" / "part-cccccccccccccccc.parquet"
    part.parent.mkdir(parents=True)
    duckdb.execute(f"COPY (SELECT 'r1' AS record_id, '{UNPAID}' AS origin_number) TO '{part}' (FORMAT parquet)")
    evidence = tmp_path / "evidence.parquet"
    duckdb.execute(f"COPY (SELECT unnest(['{UNPAID}', 'r9']) AS ident) TO '{evidence}' (FORMAT parquet)")
    done = {"file": str(part.relative_to(lake.root)), "evidence": str(evidence), "dataset": "billing",
            "partition": part.parent.name, "rows_removed": 1}
    proof = prove(duckdb.connect(), lake, policy, done)
    assert (proof.identifiers_checked, proof.ok) == (2, False) and proof.identifiers_found >= 1
    part.unlink()
    duckdb.execute(f"COPY (SELECT 'r1' AS record_id, '{BUSINESS}' AS origin_number) TO '{part}' (FORMAT parquet)")
    assert prove(duckdb.connect(), lake, policy, done).ok

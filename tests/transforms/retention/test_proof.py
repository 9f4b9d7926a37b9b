"""transforms/retention/proof.py: removed identifiers are gone from the values and the bytes, and the proof
fails on a file that still holds one."""

from __future__ import annotations

import json
import re

import duckdb

from tests.transforms.retention.conftest import BUSINESS, KEYRING, NO_INVOICE, UNPAID, run_sweep
from transforms.lake.partitions import index_path, part_files
from transforms.privacy.subject_index import build_missing
from transforms.privacy.tokens import derive_tokens
from transforms.retention.proof import identifier_runs, prove


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


def test_a_part_the_sweep_rewrites_or_removes_loses_its_subject_index(golden_lake, policy):
    # The index lists the tokens of a part's rows before the sweep: it must go with them (the part is then
    # scanned whole by a search until `subject index` writes a new one).
    lake = golden_lake
    parts = [p for z in ("billing", "analytics") for p in part_files(lake, z)]
    assert parts and all(index_path(p).exists() for p in parts)      # the analytics step wrote them
    result = run_sweep(lake, policy, "2027-04-01")
    touched = {(p.dataset, p.partition) for p in result.proofs}
    assert ("billing", "event_date=2026-03-14") in touched and all(p.ok for p in result.proofs)
    for p in parts:
        if (p.parent.parent.name, p.parent.name) in touched:
            assert not index_path(p).exists()
        else:
            assert index_path(p).exists() and p.exists()
    # Rebuilt, the rewritten part's index lists what stays and nothing the sweep removed.
    con = duckdb.connect()
    assert build_missing(con, lake, policy, KEYRING).written["billing"] >= 1
    listed = {t for p in part_files(lake, "billing") for (t,) in con.execute(
        "SELECT token FROM read_parquet($p)", {"p": str(index_path(p))}).fetchall()}
    gone = {bytes.fromhex(t) for n in (UNPAID, NO_INVOICE)
            for t in derive_tokens(n, "msisdn", KEYRING, policy.operator).values()}
    stays = {bytes.fromhex(t) for t in derive_tokens(BUSINESS, "msisdn", KEYRING, policy.operator).values()}
    assert stays <= listed and not gone & listed


def test_the_proof_fails_on_an_index_left_beside_a_rewritten_part(lake, policy):
    part = lake.zone("billing") / "event_date=2026-03-14" / "part-cccccccccccccccc.parquet"
    part.parent.mkdir(parents=True)
    duckdb.execute(f"COPY (SELECT 'r1' AS record_id, '{BUSINESS}' AS origin_number) TO '{part}' (FORMAT parquet)")
    index_path(part).write_bytes(b"the tokens of the rows before the sweep")
    done = {"file": str(part.relative_to(lake.root)), "evidence": None, "dataset": "billing",
            "partition": part.parent.name, "rows_removed": 1}
    assert not prove(duckdb.connect(), lake, policy, done).ok
    index_path(part).unlink()
    assert prove(duckdb.connect(), lake, policy, done).ok


def test_the_bytes_are_read_in_chunks_with_the_runs_a_whole_read_gives(tmp_path):
    # The raw-byte check reads a part a chunk at a time (a day's part is hundreds of MB): a run of identifier
    # characters cut by a chunk boundary is still found whole, and a run longer than a chunk is cut where a
    # whole read cuts it (every 80 characters).
    number, record = b"+38640123456", b"0f3a9c2e1b7d4a6e8c5f2a1d3b9e7c4a"
    data = (b"\x00\x15" + number + b"\x00" + record + b"\xff" + b"A" * 200 + b"\x01ab\x02" + number * 9 + b"\x00"
            + b"x" * 37)
    path = tmp_path / "part.parquet"
    path.write_bytes(data)
    whole = re.findall(rb"[0-9A-Za-z+._-]{5,80}", data)
    assert number in whole and record in whole and b"A" * 80 in whole
    for chunk in (1, 2, 5, 7, 13, 64, 81, 160, 1000):
        assert [r for runs in identifier_runs(path, chunk) for r in runs] == whole, chunk


def test_a_token_cut_by_a_chunk_boundary_is_still_found_in_the_bytes(tmp_path, monkeypatch):
    # Tokens are raw bytes in a file: the byte check looks for all 16 of them at any offset, also where two
    # chunks of the read meet.
    import numpy as np

    import transforms.retention.proof as proof

    token, other = bytes(range(200, 216)), bytes(range(200, 208)) + b"\x00" * 8   # `other` shares its first 8
    prefixes = np.array([int.from_bytes(token[:8], "big")], dtype=np.uint64)
    monkeypatch.setattr(proof, "CHUNK_BYTES", 24)
    path = tmp_path / "part.bin"
    for at in range(40):
        path.write_bytes(b"\x00" * at + token + b"\x01" * 9 + other)
        hits = set().union(*(h for _, h in proof._scan(path, prefixes)))
        assert hits == {token.hex().upper(), other.hex().upper()}, at      # candidates; the ident must equal one

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


def index_of(con, part) -> list[tuple]:
    return con.execute("SELECT * FROM read_parquet($p) ORDER BY ALL", {"p": str(index_path(part))}).fetchall()


def test_a_part_the_sweep_rewrites_keeps_an_index_of_what_stays(golden_lake, policy):
    # The index lists the identifiers of a part's rows before the sweep: a rewritten part keeps the index rows
    # of what stays (a search still skips the parts that do not hold a subject), none of what went.
    lake = golden_lake
    parts = [p for z in ("billing", "analytics") for p in part_files(lake, z)]
    assert parts and all(index_path(p).exists() for p in parts)      # the analytics step wrote them
    result = run_sweep(lake, policy, "2027-04-01")
    touched = {(p.dataset, p.partition) for p in result.proofs}
    assert {("billing", "event_date=2026-03-14"), ("analytics", "event_date=2026-03-14")} <= touched
    assert all(p.ok for p in result.proofs)
    for p in parts:
        assert index_path(p).exists() == p.exists()        # a removed part's index went with it
    # UNPAID and NO_INVOICE were only in the rows the sweep removed; BUSINESS and the called number stay.
    gone = {bytes.fromhex(t) for n in (UNPAID, NO_INVOICE)
            for t in derive_tokens(n, "msisdn", KEYRING, policy.operator).values()}
    stays = {bytes.fromhex(t) for t in derive_tokens(BUSINESS, "msisdn", KEYRING, policy.operator).values()}
    con = duckdb.connect()
    for zone in ("billing", "analytics"):
        rewritten = [p for p in part_files(lake, zone) if (zone, p.parent.name) in touched]
        assert rewritten
        listed = {t for p in rewritten for (t,) in con.execute(
            "SELECT token FROM read_parquet($p)", {"p": str(index_path(p))}).fetchall()}
        assert stays <= listed and not gone & listed
        if zone == "billing":
            spelled = {r for p in rewritten for (r,) in con.execute(
                "SELECT raw FROM read_parquet($p)", {"p": str(index_path(p))}).fetchall()}
            assert BUSINESS in spelled and not {UNPAID, NO_INVOICE} & spelled
    # And it is the index the part would get made anew from its rows (billing hashed under the same key).
    kept = {p: index_of(con, p) for p in parts if p.exists()}
    for p in kept:
        index_path(p).unlink()
    written = build_missing(con, lake, policy, KEYRING).written
    assert (written["billing"], written["analytics"]) == (len(part_files(lake, "billing")),
                                                          len(part_files(lake, "analytics")))
    assert {p: index_of(con, p) for p in kept} == kept


def test_the_proof_fails_on_an_index_that_still_lists_a_removed_identifier(lake, policy, tmp_path):
    part = lake.zone("billing") / "event_date=2026-03-14" / "part-cccccccccccccccc.parquet"
    part.parent.mkdir(parents=True)
    duckdb.execute(f"COPY (SELECT 'r1' AS record_id, '{BUSINESS}' AS origin_number) TO '{part}' (FORMAT parquet)")
    evidence = tmp_path / "evidence.parquet"
    duckdb.execute(f"COPY (SELECT '{UNPAID}' AS ident) TO '{evidence}' (FORMAT parquet)")
    done = {"file": str(part.relative_to(lake.root)), "evidence": str(evidence), "dataset": "billing",
            "partition": part.parent.name, "rows_removed": 1}
    index = str(index_path(part))
    # the index of the rows before the sweep: it lists the removed number's spelling
    duckdb.execute(f"COPY (SELECT unnest(['\\x01'::BLOB, '\\x02'::BLOB]) AS token, 'k' AS hmac_key_id,"
                   f" unnest(['{BUSINESS}', '{UNPAID}']) AS raw) TO '{index}' (FORMAT parquet)")
    assert not prove(duckdb.connect(), lake, policy, done).ok
    duckdb.execute(f"COPY (SELECT '\\x01'::BLOB AS token, 'k' AS hmac_key_id, '{BUSINESS}' AS raw)"
                   f" TO '{index}' (FORMAT parquet)")
    assert prove(duckdb.connect(), lake, policy, done).ok
    # an index left beside a part that is gone
    part.unlink()
    assert not prove(duckdb.connect(), lake, policy, done).ok
    index_path(part).unlink()
    assert prove(duckdb.connect(), lake, policy, done).ok


def test_a_damaged_index_does_not_stop_the_sweep_and_goes_with_the_old_rows(golden_lake, policy):
    march = next(p for p in part_files(golden_lake, "billing") if p.parent.name == "event_date=2026-03-14")
    index_path(march).write_bytes(b"not a parquet file")
    result = run_sweep(golden_lake, policy, "2027-04-01")
    assert all(p.ok for p in result.proofs) and march.exists() and not index_path(march).exists()


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

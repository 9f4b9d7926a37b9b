"""transforms/retention/blank.py: an erased subject blanked where they are the other party of someone else's rows,
on tiny hand-made files. Which cells must go follows from the rows written here: a row is the served
subscriber's (the caller of an outgoing record, the called party of an incoming one); the subject's token in any
other tokenized cell of a row that is not theirs is blanked, nothing else changes (policy §6.3)."""

from __future__ import annotations

import hashlib
import shutil

import duckdb
import pytest

from transforms.lake import Lake
from transforms.lake.partitions import index_path
from transforms.retention import blank as blank_module
from transforms.retention.blank import blank, plan_blanking, prove_blanked
from transforms.retention.journal import Journal, staged_rewrite


def tok(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()[:16]


S, S_IMSI, A, B, C = tok("S"), tok("S-imsi"), tok("A"), tok("B"), tok("C")
S_B = tok("S under key B")          # the subject under another key: a row of key kA holding it is not theirs
KEYS = {"kA", "kB"}
# (origin, destination, redirection, imsi, direction, key, minutes): who is served is the direction's.
ANALYTICS_ROWS = [
    (S, A, None, S_IMSI, "outgoing", "kA", 1),      # S's own row (S calls A): not blanked (the erasure removes it)
    (A, S, None, tok("A-imsi"), "outgoing", "kA", 2),    # A calls S: destination blanked
    (S, B, None, tok("B-imsi"), "incoming", "kA", 3),    # B's leg of S's call: origin blanked
    (C, A, S, tok("C-imsi"), "outgoing", "kA", 4),       # C calls A, forwarded to S: redirection blanked
    (A, C, None, tok("A-imsi"), "outgoing", "kA", 5),    # nothing of S
    (B, S_B, None, tok("B-imsi"), "outgoing", "kA", 6),  # S's key-B token under key A: not S's token here
    (B, S_B, None, tok("B-imsi"), "outgoing", "kB", 7),  # ... under key B it is: blanked
    (C, B, None, S_IMSI, "forwarded", "kA", 8),          # S's SIM forwarded C's call to B: B's row, S's IMSI blanked
]

# What the erasure leaves for blanking: S's own row removed, and no token of S's made with another key.
OTHERS = [r for i, r in enumerate(ANALYTICS_ROWS) if i not in (0, 5)]


def analytics_part(lake: Lake, rows=ANALYTICS_ROWS) -> str:
    path = lake.zone("analytics") / "event_date=2026-06-30" / "part-aaaaaaaaaaaaaaaa.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (origin_number BLOB, destination_number BLOB, redirection_number BLOB, imsi BLOB,"
                " direction VARCHAR, hmac_key_id VARCHAR, duration_s BIGINT, area VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, 'LA7')", rows)
    con.execute("COPY t TO $p (FORMAT parquet)", {"p": str(path)})
    con.close()
    return str(path.relative_to(lake.root))


def subject_tokens(con) -> None:
    """The subject's tokens as a search leaves them (`find.Search`): (kind, key id, token)."""
    con.execute("CREATE OR REPLACE TEMP TABLE subject_tokens (kind VARCHAR, key_id VARCHAR, token BLOB)")
    con.executemany("INSERT INTO subject_tokens VALUES (?, ?, ?)",
                    [("msisdn", "kA", S), ("imsi", "kA", S_IMSI), ("msisdn", "kB", S_B)])


def held(con, keys=()) -> str:
    con.execute("CREATE OR REPLACE TEMP TABLE held (file VARCHAR, key VARCHAR)")
    for file, key in keys:
        con.execute("INSERT INTO held VALUES (?, ?)", [file, key])
    return "held"


def read(lake: Lake, rel: str) -> list[tuple]:
    return duckdb.execute("SELECT * FROM read_parquet(?, hive_partitioning = false)", [str(lake.root / rel)]).fetchall()


@pytest.fixture()
def con():
    c = duckdb.connect()
    subject_tokens(c)
    yield c
    c.close()


def journal_of(lake: Lake) -> Journal:
    return Journal(lake.zone("audit") / "subjects" / "R-1" / "blanking.json", lake.root)


def plan(con, lake, policy, held_table="held", dataset="analytics", tokens="subject_tokens"):
    return plan_blanking(con, lake, policy, dataset, tokens, held_table, "§6.3", KEYS)


def test_only_the_subjects_token_in_others_rows_is_blanked_and_every_row_stays(lake, policy, con, tmp_path):
    rel = analytics_part(lake)
    before = read(lake, rel)
    (job,) = plan(con, lake, policy, held(con))
    assert (job.rows, job.rows_blanked, job.cells_blanked) == (8, 5, 5)
    entry = blank(con, lake, policy, job, "subject_tokens", "held", journal_of(lake), tmp_path / "ev")
    after = read(lake, rel)
    assert len(after) == len(before) and entry["state"] == "done"
    blanked = {(1, 1), (2, 0), (3, 2), (6, 1), (7, 3)}  # (row, column) per the comments above
    for i, (old, new) in enumerate(zip(before, after, strict=True)):
        for j, (o, n) in enumerate(zip(old, new, strict=True)):
            assert n == (None if (i, j) in blanked else o), (i, j)
    # S, S_IMSI (row 0, S's own) and S_B (row 5: no token of S's under key kA) stay: no evidence of this rewrite.
    assert prove_blanked(con, lake, policy, entry).identifiers_checked == 0
    assert plan(con, lake, policy, held(con)) == []                                   # nothing left to blank


def test_after_the_erasures_removal_none_of_the_subjects_tokens_is_left_in_the_file(lake, policy, con, tmp_path):
    rel = analytics_part(lake, OTHERS)
    (job,) = plan(con, lake, policy, held(con))
    entry = blank(con, lake, policy, job, "subject_tokens", "held", journal_of(lake), tmp_path / "ev")
    data = (lake.root / rel).read_bytes()
    assert not any(t in data for t in (S, S_IMSI, S_B)) and len(read(lake, rel)) == len(OTHERS)
    proof = prove_blanked(con, lake, policy, entry)
    assert proof.ok and proof.outcome == "blanked" and proof.identifiers_checked == 3     # S, S_B, S_IMSI


def test_a_row_a_hold_keeps_is_not_blanked(lake, policy, con, tmp_path):
    rel = analytics_part(lake)
    a_key = f"kA:{A.hex().upper()}"                  # A's rows (A served): held
    (job,) = plan(con, lake, policy, held(con, [(rel, a_key)]))
    assert (job.rows_blanked, job.cells_blanked) == (4, 4)
    entry = blank(con, lake, policy, job, "subject_tokens", "held", journal_of(lake), tmp_path / "ev")
    assert read(lake, rel)[1][1] == S                 # A's call to S kept whole
    # S's key-A token stays in a held row: not evidence of this rewrite (it did not go), so the proof holds.
    assert prove_blanked(con, lake, policy, entry).ok


def test_the_proof_fails_when_a_blanked_token_remains(lake, policy, con, tmp_path):
    rel = analytics_part(lake, OTHERS)
    original = tmp_path / "original.parquet"
    shutil.copy(lake.root / rel, original)
    (job,) = plan(con, lake, policy, held(con))
    entry = blank(con, lake, policy, job, "subject_tokens", "held", journal_of(lake), tmp_path / "ev")
    assert prove_blanked(con, lake, policy, entry).ok
    # A rewrite that did nothing (the old file back in place): every blanked token is found again.
    shutil.copy(original, lake.root / rel)
    proof = prove_blanked(con, lake, policy, entry)
    assert not proof.ok and proof.identifiers_found >= proof.identifiers_checked == 3     # S, S_B, S_IMSI
    # The token left only in the raw bytes (a column the proof does not read as a token): still found.
    con.execute("CREATE OR REPLACE TABLE leak AS SELECT ?::BLOB AS note", [S_B])
    con.execute("COPY (SELECT note FROM leak) TO $p (FORMAT parquet)", {"p": str(lake.root / rel)})
    assert prove_blanked(con, lake, policy, entry).identifiers_found == 1
    # An index left beside the part (it lists the tokens before) fails it too.
    blank_lake = Lake.at(tmp_path / "other")
    blank_lake.ensure()
    rel2 = analytics_part(blank_lake)
    (job2,) = plan(con, blank_lake, policy, held(con))
    entry2 = blank(con, blank_lake, policy, job2, "subject_tokens", "held", journal_of(blank_lake), tmp_path / "e2")
    index_path(blank_lake.root / rel2).write_bytes(b"tokens before")
    assert not prove_blanked(con, blank_lake, policy, entry2).ok


def test_killed_between_the_intent_and_the_commit_the_rerun_gives_the_same_file(lake, policy, con, tmp_path,
                                                                                 monkeypatch):
    rel = analytics_part(lake)
    twin = Lake.at(tmp_path / "twin")
    shutil.copytree(lake.root, twin.root)
    (job,) = plan(con, twin, policy, held(con))
    blank(con, twin, policy, job, "subject_tokens", "held", journal_of(twin), tmp_path / "ev-twin")
    uninterrupted = (twin.root / rel).read_bytes()

    real = blank_module.commit_file

    def killed(*_a, **_kw):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(blank_module, "commit_file", killed)
    (job,) = plan(con, lake, policy, held(con))
    with pytest.raises(KeyboardInterrupt):
        blank(con, lake, policy, job, "subject_tokens", "held", journal_of(lake), tmp_path / "ev")
    journal = journal_of(lake)
    assert journal.doc["files"][rel]["state"] == "intent" and staged_rewrite(lake.root / rel).exists()
    monkeypatch.setattr(blank_module, "commit_file", real)
    journal.resume(lambda _m: None)                   # the file is still the old one: dropped, planned again
    assert journal.doc["files"][rel]["state"] == "dropped" and not staged_rewrite(lake.root / rel).exists()
    (again,) = plan(con, lake, policy, held(con))
    assert again == job
    journal.note(blank(con, lake, policy, again, "subject_tokens", "held", journal, tmp_path / "ev"))
    assert (lake.root / rel).read_bytes() == uninterrupted
    # Killed after the commit, before "done" was written: the rerun finds the new file and does not redo it.
    entry = dict(journal.doc["files"][rel], state="intent")
    journal.note(entry)
    journal.resume(lambda _m: None)
    assert journal.doc["files"][rel]["state"] == "done" and plan(con, lake, policy, held(con)) == []


def test_marketing_rows_of_others_stay_and_count_the_subject_instead_of_naming_them(lake, policy, con, tmp_path):
    # O's profile named S (both consented); S's erasure withdrew every consent: S is counted, not named, in O's
    # row, as tonight's rebuild of the day would write it. S's own row is the erasure's to remove, not this.
    path = lake.zone("marketing") / "event_date=2026-06-30" / "part.parquet"
    path.parent.mkdir(parents=True)
    con.execute("CREATE OR REPLACE TABLE m (subscriber_token BLOB, hmac_key_id VARCHAR, events BIGINT,"
                " called_parties_consented BLOB[], called_parties_other BIGINT)")
    con.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?)", [
        (A, "kA", 5, [C, S], 2), (S, "kA", 3, [A], 0), (B, "kA", 1, [C], 0), (C, "kB", 2, [S_B, A], 1)])
    con.execute("COPY m TO $p (FORMAT parquet)", {"p": str(path)})
    con.execute("CREATE OR REPLACE TEMP TABLE marketing_tokens AS SELECT key_id, token FROM subject_tokens"
                " WHERE kind = 'msisdn'")
    (job,) = plan(con, lake, policy, held(con), "marketing", "marketing_tokens")
    assert (job.rows, job.rows_blanked, job.cells_blanked) == (4, 2, 2)
    entry = blank(con, lake, policy, job, "marketing_tokens", "held", journal_of(lake), tmp_path / "ev")
    assert read(lake, job.file) == [(A, "kA", 5, [C], 3), (S, "kA", 3, [A], 0), (B, "kA", 1, [C], 0),
                                    (C, "kB", 2, [A], 2)]
    assert prove_blanked(con, lake, policy, entry).ok and S_B not in path.read_bytes()

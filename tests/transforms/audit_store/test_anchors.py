"""transforms/audit_store/anchors.py: the log's head anchored outside the store after every write, and the log
held to every anchor (a deleted tail, a rewritten tail, an edited anchor)."""

from __future__ import annotations

import json
import os
import stat
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

from tests.transforms.audit_store.conftest import AT, events
from transforms.audit_store import LogEvent, append_log, connect, verify_store, writing
from transforms.audit_store.anchors import KEY_ENV, AnchorKeyError, anchor_head, anchor_key, anchors_dir, read_anchors

KEY = "ab" * 32
OTHER_KEY = "cd" * 32


@pytest.fixture(autouse=True)
def no_anchor_key(monkeypatch):
    """Each test sets the key it means; none comes from the environment the tests run in."""
    monkeypatch.delenv(KEY_ENV, raising=False)


def append(lake, n: int, prefix: str = "e") -> int:
    with writing(lake) as con:
        return append_log(con, events(n, prefix), at=AT)


def anchor_files(lake) -> list:
    return sorted(anchors_dir(lake).glob("anchor-*.json"))


def delete_tail(lake, n: int) -> None:
    """What someone with write access to the store could do: remove the last n entries, nothing else."""
    con = duckdb.connect(str(lake.audit_db))
    try:
        con.execute("DELETE FROM audit_log WHERE seq > (SELECT max(seq) FROM audit_log) - ?", [n])
        con.execute("CHECKPOINT")   # the deleted seqs can be inserted again (DuckDB's index keeps them till then)
    finally:
        con.close()


def rewrite(path, change) -> None:
    """Edit an anchor as its owner could: make it writable, change its JSON, write it back."""
    body = json.loads(path.read_text())
    change(body)
    path.chmod(0o644)
    path.write_text(json.dumps(body))


# ---------------------------------------------------------------- writing anchors

def test_a_write_that_appends_anchors_the_head(lake):
    append(lake, 3)
    (path,) = anchor_files(lake)
    body = json.loads(path.read_text())
    with duckdb.connect(str(lake.audit_db), read_only=True) as con:
        (seq, digest, actor, action, target), = con.execute(
            "SELECT seq, hash, actor, action, target FROM audit_log ORDER BY seq DESC LIMIT 1").fetchall()
    assert (body["seq"], body["hash"], body["entries"]) == (seq, digest, 3) == (3, digest, 3)
    assert (body["actor"], body["action"], body["target"]) == (actor, action, target)
    assert body["hmac_sha256"] is None and body["hmac"] == f"none: {KEY_ENV} was not set"
    at = datetime.fromisoformat(body["anchored_at"].replace("Z", "+00:00"))
    assert at.utcoffset() == timedelta(0) and abs(datetime.now(timezone.utc) - at) < timedelta(minutes=5)
    assert path.name == f"anchor-{at:%Y%m%dT%H%M%S%fZ}-seq{3:012d}.json"
    # Read-only, and readable by nobody but the audit zone's readers: this folder is no group zone's (docs/design.md §2).
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert not [p for p in anchors_dir(lake).iterdir() if p.name.startswith(".")]   # no staging file left
    check = verify_store(lake)
    assert check.ok and check.anchors.checked == 1 and check.anchors.latest.file == path.name
    assert check.anchors.words() == "1 anchor(s) checked, 1 written without an HMAC"


def test_an_anchor_in_a_group_audit_zone_is_read_only_for_its_group(lake):
    # The audit zone is the compliance group's (policy access.zones.audit): 2750, so an anchor is 0440.
    lake.zone("audit").mkdir(parents=True, exist_ok=True)
    lake.zone("audit").chmod(0o2750)
    append(lake, 2)
    (path,) = anchor_files(lake)
    assert stat.S_IMODE(path.stat().st_mode) == 0o440
    assert stat.S_IMODE(anchors_dir(lake).stat().st_mode) == 0o2750


def test_a_write_that_appends_nothing_adds_no_anchor(lake):
    append(lake, 3)
    first = anchor_files(lake)
    assert append(lake, 3) == 0                 # a re-run: every event already logged
    with writing(lake) as con:                  # a writer that touches no log entry
        con.execute("SELECT 1")
    assert anchor_files(lake) == first


def test_a_second_anchor_never_overwrites_the_first(lake):
    append(lake, 2)
    (first,) = anchor_files(lake)
    before = first.read_bytes()
    append(lake, 2, prefix="f")
    files = anchor_files(lake)
    assert len(files) == 2 and files[0] == first and first.read_bytes() == before
    assert [json.loads(p.read_text())["seq"] for p in files] == [2, 4]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o400 for p in files)
    assert verify_store(lake).anchors.checked == 2


def test_an_anchor_is_created_exclusively(lake):
    append(lake, 2)
    con = connect(lake)
    try:
        append_log(con, events(1, "h"), at=AT)     # no `writing`: nothing anchors this entry yet
        now = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
        taken = anchors_dir(lake) / f"anchor-{now:%Y%m%dT%H%M%S%fZ}-seq{3:012d}.json"
        taken.write_text("someone else's")
        with pytest.raises(FileExistsError):
            anchor_head(lake, con, now=now)
    finally:
        con.close()
    assert taken.read_text() == "someone else's"
    assert not [p for p in anchors_dir(lake).iterdir() if p.name.startswith(".")]


def test_a_session_that_fails_after_its_commit_still_anchors_it(lake):
    with pytest.raises(RuntimeError, match="export failed"):
        with writing(lake) as con:
            append_log(con, events(2), at=AT)
            raise RuntimeError("export failed")
    assert [json.loads(p.read_text())["seq"] for p in anchor_files(lake)] == [2]
    assert verify_store(lake).ok


def test_an_uncommitted_append_is_not_anchored(lake):
    append(lake, 1)
    with pytest.raises(RuntimeError):
        with writing(lake) as con:
            con.execute("BEGIN TRANSACTION")
            append_log(con, events(2, "x"), at=AT)
            raise RuntimeError("before COMMIT")
    assert [json.loads(p.read_text())["seq"] for p in anchor_files(lake)] == [1]
    assert verify_store(lake).ok


def test_an_empty_log_is_not_anchored(lake):
    with writing(lake):
        pass
    assert anchor_files(lake) == []


def test_holds_anchor_as_every_writer_does(lake, policy):
    from tests.transforms.retention.conftest import KEYRING
    from transforms.retention import holds

    h = holds.place(lake, policy, KEYRING, reason="dispute 2026/114", placed_by="legal", dataset="billing",
                    date_from=date(2026, 1, 1))
    holds.release(lake, policy, h.hold_id, released_by="legal", reason="settled")
    bodies = [json.loads(p.read_text()) for p in anchor_files(lake)]
    assert [(b["seq"], b["action"], b["target"]) for b in bodies] == [(1, "hold_placed", h.hold_id),
                                                                      (2, "hold_released", h.hold_id)]


# ---------------------------------------------------------------- verify against the anchors

def test_a_deleted_tail_fails_verify_naming_the_anchor(lake):
    append(lake, 5)
    (path,) = anchor_files(lake)
    digest = json.loads(path.read_text())["hash"]
    delete_tail(lake, 2)
    check = verify_store(lake)
    assert check.chain.ok                       # the shorter log still chains...
    assert not check.ok                         # ...but no longer holds what was anchored
    assert check.problems() == [f"anchor {path.name}: entry seq 5 is missing from the audit log (the log ends at"
                                " seq 3): entries were deleted"]
    assert digest not in " ".join(check.problems())


def test_a_rewritten_tail_fails_verify(lake):
    append(lake, 4)
    (path,) = anchor_files(lake)
    delete_tail(lake, 2)
    con = connect(lake)                         # entries 3 and 4 again, chained, different: no anchor written
    try:
        append_log(con, events(2, "forged"), at=AT)
    finally:
        con.close()
    check = verify_store(lake)
    assert check.chain.ok and check.problems() == [f"anchor {path.name}: entry seq 4 does not have the anchored hash"]


def test_every_anchor_is_checked_not_only_the_latest(lake):
    append(lake, 3)
    append(lake, 1, prefix="f")
    first, _ = anchor_files(lake)
    rewrite(first, lambda b: b.update(hash="0" * 64))
    check = verify_store(lake)
    assert check.anchors.checked == 2
    assert check.problems() == [f"anchor {first.name}: entry seq 3 does not have the anchored hash"]


def test_an_unreadable_or_renamed_anchor_fails_verify(lake):
    append(lake, 2)
    (path,) = anchor_files(lake)
    rewrite(path, lambda b: b.update(seq=1))
    assert verify_store(lake).problems() == [f"anchor {path.name}: its body names seq 1, its file name another"
                                             " (edited)"]
    path.write_text("{not json")
    assert verify_store(lake).problems() == [f"anchor {path.name}: unreadable (not an anchor's JSON)"]


# ---------------------------------------------------------------- the HMAC

def test_with_a_key_the_anchor_carries_an_hmac_that_verifies(lake, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    append(lake, 2)
    (path,) = anchor_files(lake)
    body = json.loads(path.read_text())
    assert len(body["hmac_sha256"]) == 64 and body["hmac"] == f"HMAC-SHA256 under {KEY_ENV}"
    assert KEY not in path.read_text()
    check = verify_store(lake)
    assert check.ok and (check.anchors.hmac_verified, check.anchors.hmac_unchecked) == (1, 0)


def test_an_edited_anchor_fails_its_hmac(lake, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    append(lake, 2)
    (path,) = anchor_files(lake)
    rewrite(path, lambda b: b.update(actor="someone else"))     # seq and hash still match the log
    check = verify_store(lake)
    assert check.problems() == [f"anchor {path.name} (seq 2): HMAC does not match its content (edited, or written"
                                f" under another {KEY_ENV})"]
    monkeypatch.setenv(KEY_ENV, OTHER_KEY)
    rewrite(path, lambda b: b.update(actor="pipeline"))
    assert not verify_store(lake).ok


def test_an_hmac_without_a_key_is_reported_unchecked_not_passed(lake, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    append(lake, 2)
    monkeypatch.delenv(KEY_ENV)
    check = verify_store(lake)
    assert check.ok and (check.anchors.hmac_verified, check.anchors.hmac_unchecked) == (0, 1)
    assert check.anchors.words() == f"1 anchor(s) checked, 1 HMAC(s) NOT checked: {KEY_ENV} is not set here"


def test_the_key_is_hex_long_enough_and_not_the_pseudonymization_key(lake, monkeypatch):
    assert anchor_key({}) is None and anchor_key({KEY_ENV: " "}) is None
    assert anchor_key({KEY_ENV: KEY}) == bytes.fromhex(KEY)
    for bad, words in (("zz" * 32, "must be hex"), ("ab" * 16, "at least 32 bytes")):
        with pytest.raises(AnchorKeyError, match=words) as e:
            anchor_key({KEY_ENV: bad})
        assert bad not in str(e.value)
    with pytest.raises(AnchorKeyError, match="must not be the pseudonymization key"):
        anchor_key({KEY_ENV: KEY, "CDR_AUDIT_HMAC_KEY": KEY.upper()})
    append(lake, 1)
    monkeypatch.setenv(KEY_ENV, "ab")
    assert verify_store(lake).problems() == [f"{KEY_ENV} must be at least 32 bytes (64 hex digits): no anchor's"
                                             " HMAC could be checked"]


def test_anchors_are_read_oldest_first(lake):
    for prefix in "abc":
        append(lake, 1, prefix=prefix)
    assert [a.seq for a in read_anchors(lake)] == [1, 2, 3]
    assert os.listdir(anchors_dir(lake)) and verify_store(lake).anchors.latest.seq == 3


def test_an_anchor_holds_nothing_the_log_does_not(lake):
    with writing(lake) as con:
        append_log(con, [LogEvent("k", "pipeline", "run_finished", "cli__2026-11-22__x",
                                  {"rows_read": 12345, "status": "completed"})], at=AT)
    body = json.loads(anchor_files(lake)[0].read_text())
    assert set(body) == {"format", "seq", "hash", "entries", "anchored_at", "actor", "action", "target", "hmac",
                         "hmac_sha256"}
    assert "12345" not in json.dumps(body)

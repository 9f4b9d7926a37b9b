"""transforms/retention/journal.py: a killed sweep's intents are settled by what the files say."""

from __future__ import annotations

from transforms.lake.commit import sha256_file
from transforms.retention.journal import Journal, staged_rewrite


def _entry(file: str, before: str | None, after: str | None) -> dict:
    return {"file": file, "before_sha256": before, "after_sha256": after, "state": "intent", "rows_removed": 1}


def test_intents_are_settled_by_the_files_bytes(tmp_path):
    lake_root = tmp_path / "lake"
    old, new, gone, odd = (lake_root / "billing" / "event_date=2026-03-14" / f"part-{n}.parquet"
                           for n in ("old", "new", "gone", "odd"))
    old.parent.mkdir(parents=True)
    for p, text in ((old, b"before"), (new, b"after"), (odd, b"neither")):
        p.write_bytes(text)
    staged_rewrite(old).write_bytes(b"half written")              # the rewrite the kill interrupted
    path = lake_root / "audit" / "retention" / "2027-04-01" / "journal.json"
    journal = Journal(path, lake_root)
    before, after = sha256_file(old), sha256_file(new)
    for f, b, a in ((old, before, "x" * 64), (new, "y" * 64, after), (gone, "z" * 64, None), (odd, "w" * 64, "v" * 64)):
        journal.note(_entry(str(f.relative_to(lake_root)), b, a))
    said: list[str] = []

    Journal(path, lake_root).resume(said.append)        # a new process reads the journal back
    states = {e["file"].rsplit("/", 1)[1]: e["state"] for e in Journal(path, lake_root).doc["files"].values()}
    # Still the old bytes: not rewritten yet, planned again (and the half-written rewrite is cleared);
    # already the new bytes, or removed as intended: done; anything else: dropped, planned again.
    assert states == {"part-old.parquet": "dropped", "part-new.parquet": "done", "part-gone.parquet": "done",
                      "part-odd.parquet": "dropped"}
    assert not staged_rewrite(old).exists()
    assert len(said) == 2 and all("resumed" in s for s in said)


def test_each_done_file_is_proved_once_and_kept(tmp_path):
    journal = Journal(tmp_path / "audit" / "retention" / "2027-04-01" / "journal.json", tmp_path)
    journal.note({**_entry("billing/p=1/part-a.parquet", "a", "b"), "state": "done"})
    journal.note(_entry("billing/p=1/part-b.parquet", "c", "d"))       # still an intent: not proved
    checked = []

    def check(entry):
        checked.append(entry["file"])
        return {"file": entry["file"], "found": 0}
    assert journal.prove(check) == [{"file": "billing/p=1/part-a.parquet", "found": 0}]
    assert journal.prove(check) == [{"file": "billing/p=1/part-a.parquet", "found": 0}]
    assert checked == ["billing/p=1/part-a.parquet"]
    journal.close()
    assert Journal(journal.path, tmp_path).doc["completed"] is True

"""What a day's sweep has done to files, kept on disk so a killed sweep is finished, not redone.

`LAKE/audit/retention/<as of>/journal.json` holds one entry per file: first the intent (with the file's
sha256 before and after the rewrite), then done. A re-run settles the intents a killed sweep left: done
when the file already is the new one, dropped (and planned again) when it is still the old one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from transforms.lake.commit import sha256_file
from transforms.lake.records import read_json, to_plain, write_json

TMP_SUFFIX = ".retention-tmp"


def staged_rewrite(path: Path) -> Path:
    """Where a part file's rewrite is staged (beside it, hidden) until it is renamed into place."""
    return path.with_name(f".{path.name}{TMP_SUFFIX}")


class Journal:
    """The entries of one sweep day, saved after every change."""

    def __init__(self, path: Path, lake_root: Path):
        self.path, self.lake_root = path, lake_root
        self.doc = read_json(path, default={"as_of": path.parent.name, "files": {}})

    def _save(self) -> None:
        write_json(self.path, self.doc)

    def note(self, entry: dict) -> None:
        """Record an entry (an intent before a file changes, or its outcome after)."""
        self.doc["files"][entry["file"]] = entry
        self._save()

    def keep(self, **facts) -> None:
        """Keep facts beside the entries (what a re-run must not work out again, e.g. what was found first)."""
        self.doc.update(facts)
        self._save()

    def resume(self, say: Callable[[str], None]) -> None:
        """Settle the entries a killed sweep left as intents: done if the file is already the new one."""
        for entry in self.doc["files"].values():
            if entry["state"] != "intent":
                continue
            path = self.lake_root / entry["file"]
            current = sha256_file(path) if path.exists() else None
            if current == entry["after_sha256"]:
                entry["state"] = "done"
                say(f"resumed: {entry['file']} had been rewritten")
            elif current == entry["before_sha256"]:
                entry["state"] = "dropped"          # not rewritten yet: tonight's plan redoes it
                staged_rewrite(path).unlink(missing_ok=True)
            else:
                entry["state"] = "dropped"
        self._save()

    def prove(self, check: Callable[[dict], object]) -> list[dict]:
        """The proof of every file done (a dataclass made by `check`, kept as its fields), each checked once,
        right after its rewrite, and kept with its entry."""
        for e in self.done():
            if "proof" not in e:
                e["proof"] = to_plain(check(e))
        self._save()
        return [e["proof"] for e in self.done()]

    def done(self) -> list[dict]:
        return [e for e in self.doc["files"].values() if e["state"] == "done"]

    def close(self) -> None:
        self.doc["completed"] = True
        self._save()

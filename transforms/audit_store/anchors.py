"""Anchors of the audit log: its head (last seq and hash) written outside audit.duckdb after every write.

The chain alone cannot tell a log whose last entries were deleted from a shorter log. Each time a writing
session leaves the log with a new head, `anchor_head` writes one new file to `LAKE/audit/anchors/`:
created exclusively (never overwritten), read-only, optionally HMAC-SHA256'd under its own key
(`CDR_AUDIT_ANCHOR_KEY`, hex). `check_anchors` holds the log to every anchor: the anchored entry must still
be there with the anchored hash (docs/design.md §6). Anchors name seqs, hashes, counts and the head's
actor, action and target: nothing the log does not already hold.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from transforms.lake import Lake
from transforms.lake.permissions import make_dirs, set_file_mode
from transforms.privacy.keys import report_secret

KEY_ENV = "CDR_AUDIT_ANCHOR_KEY"
_PSEUDONYMIZATION_KEY_ENV = "CDR_AUDIT_HMAC_KEY"
_MIN_KEY_BYTES = 32
FORMAT = "cdr-audit-anchor/1"


class AnchorKeyError(ValueError):
    """CDR_AUDIT_ANCHOR_KEY is set but unusable (the message never holds the key)."""


@dataclass(frozen=True)
class Anchor:
    """One anchor file, as read back."""

    file: str                       # name under audit/anchors/
    seq: int
    hash: str
    entries: int
    anchored_at: str                # ISO time, UTC
    actor: str
    action: str
    target: str
    hmac_sha256: str | None         # None: written without a key
    body: dict = field(repr=False, compare=False)


@dataclass(frozen=True)
class AnchorCheck:
    """The log held to every anchor."""

    checked: int = 0                # anchors compared with the log
    hmac_verified: int = 0
    hmac_unchecked: int = 0         # carry an HMAC, but no key here to check it
    unsigned: int = 0               # written without a key
    problems: tuple[str, ...] = ()  # one line per failing anchor: its file and seq, never a value
    latest: Anchor | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def words(self) -> str:
        """How many anchors were checked and what of their HMACs, in a line."""
        if not self.checked:
            return "no anchor written yet"
        parts = [f"{self.checked} anchor(s) checked"]
        if self.hmac_verified:
            parts.append(f"{self.hmac_verified} HMAC(s) verified")
        if self.hmac_unchecked:
            parts.append(f"{self.hmac_unchecked} HMAC(s) NOT checked: {KEY_ENV} is not set here")
        if self.unsigned:
            parts.append(f"{self.unsigned} written without an HMAC")
        return ", ".join(parts)


def anchors_dir(lake: Lake) -> Path:
    return lake.zone("audit") / "anchors"


def anchor_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The anchors' HMAC key from the environment; None when unset."""
    environ = os.environ if environ is None else environ
    text = (environ.get(KEY_ENV) or "").strip()
    if not text:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise AnchorKeyError(f"{KEY_ENV} must be hex") from None
    if len(key) < _MIN_KEY_BYTES:
        raise AnchorKeyError(f"{KEY_ENV} must be at least {_MIN_KEY_BYTES} bytes ({2 * _MIN_KEY_BYTES} hex digits)")
    # A key of its own: whoever may check anchors need not hold the key that makes the tokens (docs/design.md §6).
    if text.lower() == (environ.get(_PSEUDONYMIZATION_KEY_ENV) or "").strip().lower():
        raise AnchorKeyError(f"{KEY_ENV} must not be the pseudonymization key ({_PSEUDONYMIZATION_KEY_ENV})")
    # Masked in an orchestrator's logs like the HMAC keys (docs/design.md §4).
    try:
        report_secret(key, text)
    except ValueError:
        raise AnchorKeyError(f"{KEY_ENV} could not be registered with the log masker: refusing to use it") from None
    return key


def _canonical(body: dict) -> bytes:
    unsigned = {k: v for k, v in body.items() if k != "hmac_sha256"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(key: bytes, body: dict) -> str:
    return hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()


def log_head(con: duckdb.DuckDBPyConnection) -> tuple | None:
    """(seq, hash, entries, actor, action, target) of the log's last entry; None for an empty log."""
    # max(seq), not ORDER BY … LIMIT 1, which DuckDB 2.0 can answer with an earlier row after a deletion.
    return con.execute(
        "SELECT seq, hash, (SELECT count(*) FROM audit_log), actor, action, target FROM audit_log"
        " WHERE seq = (SELECT max(seq) FROM audit_log)").fetchone()


def _anchor_files(lake: Lake) -> list[Path]:
    """The anchor files, oldest first: names begin with the UTC time they were written."""
    folder = anchors_dir(lake)
    return sorted(p for p in folder.glob("anchor-*.json") if p.is_file()) if folder.is_dir() else []


def anchor_names(lake: Lake) -> tuple[str, ...]:
    """The anchor files' names, oldest first."""
    return tuple(p.name for p in _anchor_files(lake))


# A reader's copy of the store is held to the anchors that were there when it was copied (`store.reading`,
# which lists them under the same lock): an anchor a writer adds afterwards names entries the copy cannot
# hold, and is no sign of a deleted tail (docs/design.md §6). {id(connection): anchor file names}.
_COPIED_WITH: dict[int, tuple[str, ...]] = {}


def remember_copy(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    _COPIED_WITH[id(con)] = names


def forget_copy(con: duckdb.DuckDBPyConnection) -> None:
    _COPIED_WITH.pop(id(con), None)


def _read(path: Path) -> Anchor | str:
    """One anchor file; its name when it does not parse as one."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return Anchor(file=path.name, seq=int(body["seq"]), hash=str(body["hash"]), entries=int(body["entries"]),
                      anchored_at=str(body["anchored_at"]), actor=str(body["actor"]), action=str(body["action"]),
                      target=str(body["target"]), hmac_sha256=body.get("hmac_sha256"), body=body)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return path.name


def read_anchors(lake: Lake, names: tuple[str, ...] | None = None) -> list[Anchor | str]:
    """Every anchor (or those `names`), oldest first; a file that does not parse, or is gone, is its name."""
    if names is None:
        return [_read(p) for p in _anchor_files(lake)]
    return [_read(anchors_dir(lake) / n) for n in names]


def latest_anchor(lake: Lake) -> Anchor | None:
    """The newest anchor that parses (reads back from the newest file only as far as needed)."""
    return next((a for a in map(_read, reversed(_anchor_files(lake))) if isinstance(a, Anchor)), None)


def anchor_head(lake: Lake, con: duckdb.DuckDBPyConnection, *, now: datetime | None = None,
                environ: Mapping[str, str] | None = None) -> Path | None:
    """Write an anchor of the log's head unless the latest anchor already names it; the new file's path.

    Called by `store.writing` as a session ends, under the writer lock, with what is committed: a session
    that appended nothing (a re-run whose events are all logged) leaves the head as anchored and adds none.
    """
    head = log_head(con)
    if head is None:
        return None
    seq, digest, entries, actor, action, target = head
    latest = latest_anchor(lake)
    if latest and (latest.seq, latest.hash) == (seq, digest):
        return None
    key = anchor_key(environ)
    at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    body = {"format": FORMAT, "seq": seq, "hash": digest, "entries": entries,
            "anchored_at": at.isoformat().replace("+00:00", "Z"), "actor": actor, "action": action, "target": target,
            "hmac": f"HMAC-SHA256 under {KEY_ENV}" if key else f"none: {KEY_ENV} was not set"}
    body["hmac_sha256"] = _mac(key, body) if key else None
    folder = anchors_dir(lake)
    make_dirs(folder)
    final = folder / f"anchor-{at:%Y%m%dT%H%M%S%fZ}-seq{seq:012d}.json"
    tmp = folder / f".{final.name}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(body, fh, sort_keys=True, indent=1)
            fh.write("\n")
            fh.flush()
            # Read-only, readable by the audit zone's group (policy access.zones.audit): 0440 (docs/design.md §2).
            set_file_mode(fh.fileno(), folder, read_only=True)
            os.fsync(fh.fileno())
        # Commit point: a hard link appears whole, and fails rather than replace an existing anchor.
        os.link(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def check_anchors(con: duckdb.DuckDBPyConnection, lake: Lake, *,
                  environ: Mapping[str, str] | None = None) -> AnchorCheck:
    """Hold the log to every anchor: each anchored seq must be in the log with the anchored hash, and an
    anchor's HMAC must verify when a key is set. Problems name the anchor file and seq, never a hash.

    A reader's copy (`store.reading`) is held to the anchors there were when it was copied."""
    problems: list[str] = []
    try:
        key = anchor_key(environ)
    except AnchorKeyError as e:
        key, problems = None, [f"{e}: no anchor's HMAC could be checked"]
    anchors = read_anchors(lake, _COPIED_WITH.get(id(con)))
    found = [a for a in anchors if isinstance(a, Anchor)]
    stored = dict(con.execute("SELECT seq, hash FROM audit_log WHERE seq IN (SELECT unnest(?))",
                              [sorted({a.seq for a in found})]).fetchall()) if found else {}
    last_seq = con.execute("SELECT max(seq) FROM audit_log").fetchone()[0] or 0
    verified = unchecked = unsigned = 0
    for a in anchors:
        if isinstance(a, str):
            problems.append(f"anchor {a}: unreadable (not an anchor's JSON)")
            continue
        if f"-seq{a.seq:012d}." not in a.file:
            problems.append(f"anchor {a.file}: its body names seq {a.seq}, its file name another (edited)")
        elif a.seq not in stored:
            problems.append(f"anchor {a.file}: entry seq {a.seq} is missing from the audit log (the log ends at"
                            f" seq {last_seq}): entries were deleted")
        elif stored[a.seq] != a.hash:
            problems.append(f"anchor {a.file}: entry seq {a.seq} does not have the anchored hash")
        if a.hmac_sha256 is None:
            unsigned += 1
        elif key is None:
            unchecked += 1
        elif hmac.compare_digest(_mac(key, a.body), str(a.hmac_sha256)):
            verified += 1
        else:
            problems.append(f"anchor {a.file} (seq {a.seq}): HMAC does not match its content (edited, or"
                            f" written under another {KEY_ENV})")
    return AnchorCheck(checked=len(anchors), hmac_verified=verified, hmac_unchecked=unchecked, unsigned=unsigned,
                       problems=tuple(problems), latest=found[-1] if found else None)

"""Planning a night: fingerprint every landing file, decide what tonight does with it, open the run.

The run first holds the lake to the policy's `access`: a zone looser than declared refuses the run
(`ZonesOpen`) unless it is told to go on, which the audit log records (docs/design.md §2). It then takes the
night's lease (a second run of the night is refused: `NightBusy`) and clears what dead runs left
(`transforms.runs`). A file whose content was audited in an earlier run is skipped (`known`: a
re-run adds nothing twice), and so is one another live run has claimed; a second copy of tonight's content
under another name is a `duplicate_file`. A delivery's content is its decompressed bytes with every line ending
made LF, so a gzipped copy or a CRLF re-export of a plain file is a copy too. Hidden, in-flight and non-regular
entries are `ignored` (never opened); everything else is claimed and audited. The plan is written beside the
run's fragments, so every task of the run (possibly another process) reads the same one.

A name is bytes, not text (a Windows share or FTP drop delivers Latin-1 names; a name may hold a line
break, a glob character or a leading dash): the plan keeps it as JSON-safe text that reopens the exact
bytes (`PlannedFile.fs_path`) and records an escaped, printable form, unique in the night (docs/design.md §1)."""

from __future__ import annotations

import fnmatch
import os
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import BinaryIO

from transforms.audit_store import LogEvent, append_log, insert, now_utc, writing
from transforms.audit_store.deliveries import nothing_landed_words
from transforms.audit_store.tables import Run, ZonePermission
from transforms.bundled import REPO_ROOT
from transforms.lake import Lake
from transforms.lake.commit import remove_tree
from transforms.lake.permissions import LakeCheck, check_lake, prepare_lake, refuse_open
from transforms.lake.records import read_record, write_json
from transforms.policy import Policy
from transforms.privacy.redact import safe_file_name
from transforms.privacy.restricted import restricted_now, write_restricted
from transforms.runs import night_subject, recover
from transforms.runs.claims import claim
from transforms.runs.lease import PROCESS, RUN, acquire
from transforms.steps.lines import FileShape, fingerprint_file

FINGERPRINT_THREADS = 2     # the machine's cores (docs/design.md §8)


@dataclass(frozen=True)
class PlannedFile:
    """One landing file and what tonight's run does with it."""

    path: str               # the path as text: exact when its bytes are UTF-8, else escaped (see path_hex)
    file_name: str          # sanitized, escaped, unique in the night: for the audit store
    sha256: str
    bytes: int
    lines: int | None       # physical lines, for the line accounting of ingest (None: Parquet)
    action: str             # audit | known | duplicate_file | ignored
    reason: str = ""
    duplicate_of: str | None = None
    line_endings: str | None = None   # lf | crlf | cr | mixed (None: Parquet, or no line break)
    path_hex: str | None = None       # the path's bytes in hex when they are not UTF-8 (JSON holds text only)
    compression: str | None = None    # gzip | bzip2 | zstd: lines and line endings are of the decompressed content
    fault: str | None = None          # a compressed stream not readable whole: why (refused whole)
    content_sha256: str | None = None  # its content's, decompressed, line endings LF (None: its bytes are it)

    @property
    def shape(self) -> FileShape:
        """What the plan's pass over the file found, for the steps that read it."""
        return FileShape(self.sha256, self.lines, self.line_endings, self.compression, self.fault,
                         self.content_sha256)

    @property
    def path_bytes(self) -> bytes:
        return bytes.fromhex(self.path_hex) if self.path_hex is not None else os.fsencode(self.path)

    @property
    def fs_path(self) -> Path:
        """The landing file's path, to open: the exact bytes the plan listed."""
        return Path(os.fsdecode(self.path_bytes))


@dataclass(frozen=True)
class NightPlan:
    run_id: str
    night: str
    policy_sha256: str
    files: tuple[PlannedFile, ...]
    zones_open: int = 0     # entries looser than the policy's access, the run told to go on (docs/design.md §2)

    @property
    def to_audit(self) -> list[PlannedFile]:
        return [f for f in self.files if f.action == "audit"]

    @property
    def nothing_landed(self) -> bool:
        """No file to read landed: the folder was empty, or held only entries never opened (hidden, in-flight, not
        regular files). A night whose extracts did not arrive completes, and says so (docs/design.md §9)."""
        return all(f.action == "ignored" for f in self.files)

    @property
    def nothing_landed_warning(self) -> str | None:
        """What a night where nothing landed says (the CLI, the DAG's log; the summary and the report say the same
        from the store). None when something landed."""
        return nothing_landed_words(self.night, len(self.files)) if self.nothing_landed else None


def code_version() -> str:
    """Package version plus the git commit when run from a checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("cdr-audit")
    except PackageNotFoundError:
        v = "0+unknown"
    try:
        sha = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{v}+g{sha}" if sha else v


def plan_night(landing: str | Path, lake: Lake, policy: Policy, *, night: str, run_id: str,
               trigger: str, allow_open_zones: bool = False) -> NightPlan:
    """Fingerprint the landing files and open the run in the audit store.

    Refuses to start (`ZonesOpen`, nothing written) while a zone is looser than the policy's `access`, unless
    `allow_open_zones`; either way the check's result per zone goes to `zone_permissions`."""
    date.fromisoformat(night)
    landing = Path(landing)
    if not landing.is_dir():
        raise FileNotFoundError(f"landing folder {landing} does not exist or is not a folder")
    prepare_lake(lake, policy.access)      # what is missing, with the policy's modes
    permissions = check_lake(lake, policy.access)
    refuse_open(permissions, allow=allow_open_zones)
    # An orchestrator's run spans many task processes; a CLI run is its process (transforms.runs.lease).
    acquire(lake, night_subject(night), run_id, bound=RUN if trigger == "airflow" else PROCESS)
    recover(lake, actor=trigger)
    remove_tree(lake.fragments_dir(run_id))  # a retried plan starts the run's facts afresh
    with writing(lake) as con:
        # Known by content (decompressed, line endings LF): a file's own bytes where they are that already. A file
        # refused whole tonight before is tried again: a re-run of the night may bring the format it lacked
        # (--formats, --format), and the night's files then show its latest outcome (v_night_files).
        known = {(content, sha) for content, sha in con.execute(
            "SELECT DISTINCT coalesce(content_sha256, sha256), sha256 FROM source_files"
            " WHERE status NOT IN ('known', 'ignored', 'failed', 'duplicate_file') AND run_id <> ?"
            " AND NOT (status = 'rejected_file' AND night = ?)",
            [run_id, date.fromisoformat(night)]).fetchall()}
        # Claimed under the store's lock: a run closing meanwhile has either committed (known) or still
        # holds its claims (transforms.runs.claims).
        files = _plan_files(landing, known)
        # By content, as `known` is: a run of another night auditing the gzipped copy holds the plain one too.
        elsewhere = claim(lake, run_id, [f.shape.content for f in files if f.action == "audit"])
        files = [_claimed_elsewhere(f, elsewhere[f.shape.content])
                 if f.action == "audit" and f.shape.content in elsewhere else f for f in files]
        plan = NightPlan(run_id, night, policy.sha256, tuple(files), permissions.open)
        started = now_utc()
        con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
        insert(con, [Run(run_id=run_id, night=date.fromisoformat(night), trigger=trigger, started_at=started,
                         status="running", policy_id=policy.id, policy_version=policy.version,
                         policy_sha256=policy.sha256, code_version=code_version(), files_seen=len(files))])
        con.execute("DELETE FROM zone_permissions WHERE run_id = ?", [run_id])
        insert(con, permission_rows(run_id, permissions, started))
        events = [LogEvent(
            f"run:{run_id}:start", trigger, "run_started", run_id,
            {"night": night, "policy_sha256": policy.sha256, "policy_version": policy.version,
             "files_seen": len(files), "files_to_audit": sum(f.action == "audit" for f in files),
             "zone_entries_checked": permissions.entries,
             "zone_entries_open": permissions.open,
             **({"nothing_landed": True} if plan.nothing_landed else {})})]
        if not permissions.ok:
            events.append(open_zones_event(f"run:{run_id}:zones_open", trigger, run_id, permissions))
        append_log(con, events, started)
        # The subjects whose processing is restricted tonight (docs/design.md §12): handed to the steps as tokens,
        # so they never open the store.
        restricted = restricted_now(con)
    write_json(plan_path(lake, run_id), plan)
    write_restricted(lake, run_id, restricted)
    return plan


def permission_rows(run_id: str, check: LakeCheck, at) -> list[ZonePermission]:
    """The check's result per zone, as the audit store keeps it (a run that went on with open zones did so
    because it was told to: `allowed_open`)."""
    return [ZonePermission(run_id=run_id, zone=z.scope, access=z.access, group_role=z.role, unix_group=z.unix_group,
                           group_on_host=z.group_on_host, dir_mode=f"{z.dir_mode:04o}",
                           file_mode=f"{z.file_mode:04o}" if z.access != "traverse" else None,
                           entries_checked=z.entries, entries_open=z.open,
                           entries_other_group=z.other_group if z.group_on_host else None,
                           allowed_open=not z.ok, clause=z.clause, checked_at=at) for z in check.scopes]


def open_zones_event(key: str, actor: str, target: str, check: LakeCheck) -> LogEvent:
    """`zones_open_allowed`: the run went on with zones looser than the policy declares, because it was told to
    (--allow-open-zones; DAG param allow_open_zones). Zone names and counts only, never a path or content."""
    return LogEvent(key, actor, "zones_open_allowed", target,
                    {"zones": {z.scope: {"entries_open": z.open, "entries_checked": z.entries, "access": z.access}
                               for z in check.open_scopes},
                     "entries_open": check.open})


def _plan_files(landing: Path, known: set[tuple[str, str]]) -> list[PlannedFile]:
    """What tonight does with each entry of `landing`; `known` holds (content, sha256) of the files earlier runs
    audited."""
    files: list[PlannedFile] = []
    first_seen: dict[str, tuple[str, str]] = {}     # content -> (name, sha256) of the file first seen with it
    known_content, known_bytes = {c for c, _ in known}, {sha for _, sha in known}
    entries = sorted(os.scandir(os.fsencode(landing)), key=lambda e: e.name)     # bytes names, bytes order
    names = _recorded_names([e.name for e in entries])
    stats = [e.stat(follow_symlinks=False) for e in entries]
    # Two files at a time: sha256 leaves the GIL while it hashes (0.9 of the 10M-row night's 3 s; benchmarks/README.md,
    # issue 17). Each file is opened by its own task and closed at once, however many files the night has.
    with ThreadPoolExecutor(max_workers=FINGERPRINT_THREADS) as pool:
        shapes = list(pool.map(_fingerprint_entry, entries, stats))
    for entry, name, st, shape in zip(entries, names, stats, shapes, strict=True):
        where = _json_safe_path(entry.path)
        if shape is None:
            what = "hidden or in-flight file" if entry.name.startswith(b".") else "not a regular file"
            files.append(PlannedFile(**where, file_name=name, sha256="", bytes=0, lines=0, action="ignored",
                                     reason=f"{what}; not read"))
            continue
        common = dict(**where, file_name=name, sha256=shape.sha256, bytes=st.st_size, lines=shape.lines,
                      line_endings=shape.line_endings, compression=shape.compression, fault=shape.fault,
                      content_sha256=shape.content_sha256)
        # A compressed delivery, a CRLF re-export and a plain LF file of the same content are one delivery, whichever
        # came first: the rows would otherwise be loaded twice (docs/design.md §1).
        if shape.content in known_content:
            same = "same bytes" if shape.sha256 in known_bytes else "same content (decompressed, line endings aside)"
            files.append(PlannedFile(**common, action="known", reason=f"{same} already audited in an earlier run"))
        elif shape.content in first_seen:
            first, first_sha = first_seen[shape.content]
            why = (f"byte-identical to {first}" if first_sha == shape.sha256
                   else f"the same content as {first} (decompressed, line endings aside)")
            files.append(PlannedFile(**common, action="duplicate_file", reason=why, duplicate_of=first_sha))
        else:
            first_seen[shape.content] = (name, shape.sha256)
            files.append(PlannedFile(**common, action="audit"))
    return files


def _fingerprint_entry(entry: os.DirEntry, st: os.stat_result) -> FileShape | None:
    """The shape of a landing entry that is a regular file, read once; None for one never opened (hidden,
    in-flight, not a regular file)."""
    fh = None if entry.name.startswith(b".") else _open_regular(entry.path, st)
    if fh is None:
        return None
    with fh:
        return fingerprint_file(fh)


def _claimed_elsewhere(planned: PlannedFile, other_run: str) -> PlannedFile:
    """A file another live run is auditing now (another night's run, reading the same bytes)."""
    return replace(planned, action="known", reason=f"being audited by run {other_run}")


def _open_regular(path: bytes, st: os.stat_result) -> BinaryIO | None:
    """The entry opened for reading when it is a regular file, else None — never following a symlink and never
    waiting on a FIFO, even one swapped in after the listing (docs/design.md §1)."""
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _json_safe_path(path: bytes) -> dict[str, str | None]:
    """`path` and `path_hex` of a PlannedFile: text that survives JSON (Airflow's XCom), the exact bytes kept."""
    try:
        return {"path": path.decode("utf-8"), "path_hex": None}
    except UnicodeDecodeError:
        return {"path": path.decode("utf-8", "backslashreplace"), "path_hex": path.hex()}


def _recorded_names(raw_names: list[bytes]) -> list[str]:
    """Each landing name's recorded form (`safe_file_name`), made unique in the night: names that read the same
    once escaped, masked or shortened get ` (2)`, ` (3)` … in bytes order, so each entry keeps its own
    `source_files` row. A counter, not a hash of the name: a hash of a name that holds a number could be
    matched by trying numbers (docs/design.md §4)."""
    shown = [safe_file_name(raw, 120) for raw in raw_names]
    taken, out = set(shown), []
    seen: set[str] = set()
    for name in shown:
        unique, n = name, 1
        while unique in seen or (unique != name and unique in taken):
            n += 1
            unique = f"{name} ({n})"
        seen.add(unique)
        out.append(unique)
    return out


def plan_path(lake: Lake, run_id: str) -> Path:
    return lake.fragments_dir(run_id) / "plan.json"


def load_plan(lake: Lake, run_id: str) -> NightPlan:
    return read_record(plan_path(lake, run_id), NightPlan)


def override_for(planned: PlannedFile, overrides: dict[str, str]) -> str | None:
    """What the first glob of `overrides` (pattern -> value) that matches the file's name says: a forced
    format, or a time zone."""
    name = planned.fs_path.name
    return next((value for pattern, value in overrides.items() if fnmatch.fnmatch(name, pattern)), None)

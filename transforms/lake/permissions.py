"""Who may read what: each zone's access from the policy (`access`), as Unix modes (docs/design.md §2).

What each access kind means on disk:

* `owner` — folders 0700, files 0600: the account that runs the pipeline alone (billing, invoices,
  quarantine, consent, and the run's work folders).
* `group` — folders 2750, files 0640: that account writes, the zone's group reads and lists, nobody else.
  The setgid bit makes whatever is made inside a folder take the folder's group, so a zone stays readable
  by its group without a chown per file.
* the lake root — 0711: every account may pass through it to a zone its group may read, no account may
  list it. Zone names are no secret (they are documented), but listing is not needed to reach a zone, and
  each zone's own mode decides who gets in; a group zone cannot be reached through a root its group cannot
  traverse, and two zones have two groups, so the root cannot be theirs.
* a read-only file (an anchor of the audit log) stays read-only: 0440 in a group zone, 0400 in an owner zone.

How every write applies it without a walk: the zone folders get the policy's modes (`prepare_lake` makes
missing ones, `apply_lake` fixes an existing lake), and whatever is made below a zone folder takes its modes
from the folder it is made in — a setgid folder is a group zone's, any other an owner zone's (`modes_under`):
one stat per write. Processes start with umask 077 (`owner_only_umask`, at the entry points), so whatever a
library makes (DuckDB's database and COPY, pyarrow, Great Expectations) starts owner-only; the commit points
(transforms/lake/commit.py) set the zone's modes before the rename into view, so a file is never visible
with a looser mode than its zone's.

`check_lake` walks the lake once (at a run's start, and for `cdr-audit verify --permissions`) and counts
the entries looser than declared: in an owner zone any group or other bit, in a group zone any other bit,
on the root a read or write bit for group or other. It only reads (lstat), so it needs no more than read
access. Paths in the lake are named by dates and sha256 prefixes, never by a value of personal data;
an example path is masked all the same before it is shown.
"""

from __future__ import annotations

import grp
import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from transforms.lake.zones import Lake

if TYPE_CHECKING:
    from transforms.policy.model import AccessRule, ZoneAccess

OWNER, GROUP = "owner", "group"
# (folder mode, file mode) of each access kind of the policy (docs/design.md §2).
MODES = {OWNER: (0o700, 0o600), GROUP: (0o2750, 0o640)}
ROOT_MODE = 0o711
# Bits that make an entry open: owner zone — any group or other bit; group zone — any other bit;
# the root — read or write for group or other (traversing it is what 0711 allows).
_OPEN_BITS = {OWNER: 0o077, GROUP: 0o007}
_ROOT_OPEN_BITS = 0o066
OWNER_ONLY_UMASK = 0o077
# The umask that makes what a library writes inside a group folder group-readable (setgid gives the group).
_GROUP_UMASK = 0o027
ROOT = "lake_root"
WORK = "work"
# The run's work folders (policy access.work): relative to the lake root. A zone's half-committed
# `.staging-*` / `.replaced-*` folders are made owner-only where they are (transforms/lake/commit.py).
WORK_DIRS = ("_work", "audit/_pending", "audit/_leases", "audit/_claims")
# A run of 9+ digits may be a number, IMSI or IMEI: masked in an example path, as transforms/privacy/redact.py
# masks names (lake paths hold dates and sha256 prefixes only; this is a second guard, not the first). Digits
# inside a hex name (a sha256 prefix) are not a number.
_LOOKS_LIKE_NUMBER = re.compile(r"(?<![0-9a-f])\d{9,}(?![0-9a-f])")


# ------------------------------------------------------------------------------------------ modes of new entries

def owner_only_umask() -> int:
    """Start the process owner-only (umask 077): anything made from here on is unreadable by others until a
    commit point gives it its zone's modes. Returns the previous umask."""
    return os.umask(OWNER_ONLY_UMASK)


@contextmanager
def owner_only() -> Iterator[None]:
    """umask 077 for the block (an orchestrator's task), restored after it."""
    previous = owner_only_umask()
    try:
        yield
    finally:
        os.umask(previous)


@contextmanager
def umask_for(folder: Path) -> Iterator[None]:
    """For a library that writes straight into a zone (Great Expectations' Data Docs): the umask that gives
    what it makes inside `folder` that folder's access, restored after the block."""
    previous = os.umask(_GROUP_UMASK if _is_group(folder) else OWNER_ONLY_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def _is_group(folder: Path) -> bool:
    return bool(os.stat(folder).st_mode & stat.S_ISGID)


def modes_under(folder: Path) -> tuple[int, int]:
    """(folder mode, file mode) of a new entry in `folder`: a setgid folder is a group zone's, any other an
    owner zone's (never a looser mode than the folder's zone declares)."""
    return MODES[GROUP] if _is_group(folder) else MODES[OWNER]


def file_mode_under(folder: Path, *, read_only: bool = False) -> int:
    mode = modes_under(folder)[1]
    return mode & 0o444 if read_only else mode


def make_dirs(path: Path) -> None:
    """`mkdir -p` where each folder made takes its parent's access (its mode set explicitly, whatever the umask)."""
    path = Path(path)
    if path.is_dir():
        return
    missing = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue            # another process made it meanwhile: it set its mode
        os.chmod(folder, modes_under(folder.parent)[0])


def make_owner_only_dir(path: Path) -> None:
    """A folder the pipeline's account alone may enter (0700), wherever it is and whatever its parent's access:
    for what leaves the lake (a data subject's export of their raw rows). Missing parents are made as
    `make_dirs` makes them; an existing folder is narrowed to 0700 (its setgid bit cleared)."""
    path = Path(path)
    make_dirs(path.parent)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    os.chmod(path, MODES[OWNER][0])


def set_file_mode(fd: int, folder: Path, *, read_only: bool = False) -> None:
    """Give an open file the mode of a file in `folder`, and a group folder's group (a file written in the work
    folder and renamed into a group zone keeps the group it was made with: setgid acts only on creation).
    One stat of each; nothing changed when it is right already."""
    where, st = os.stat(folder), os.fstat(fd)
    group = bool(where.st_mode & stat.S_ISGID)
    mode = MODES[GROUP if group else OWNER][1]
    mode = mode & 0o444 if read_only else mode
    if group and st.st_gid != where.st_gid:
        try:
            os.fchown(fd, -1, where.st_gid)
        except PermissionError:
            pass                        # not a member of the zone's group: the check counts it (other_group)
    if stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)


def settle_path(path: Path, *, read_only: bool = False) -> None:
    """Give an existing file the mode (and group) of its folder's access."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        set_file_mode(fd, path.parent, read_only=read_only)
    finally:
        os.close(fd)


def settle_tree(top: Path, folder: Path) -> None:
    """Give `top` (a staging folder about to be renamed into `folder`) and everything in it `folder`'s
    access: the files first, `top` last, so nothing in it is reachable before it has its mode."""
    dir_mode, file_mode = modes_under(folder)
    for parent, dirs, files in os.walk(top, topdown=False):
        for name in files:
            p = os.path.join(parent, name)
            if not os.path.islink(p):
                os.chmod(p, file_mode if os.stat(p).st_mode & stat.S_IWUSR else file_mode & 0o444)
        for name in dirs:
            os.chmod(os.path.join(parent, name), dir_mode)
    os.chmod(top, dir_mode)


# ------------------------------------------------------------------------------------------ the lake's folders

def group_id(unix_group: str) -> int | None:
    """The host's id of a Unix group; None when the host has no such group."""
    try:
        return grp.getgrnam(unix_group).gr_gid
    except KeyError:
        return None


@dataclass(frozen=True)
class Scope:
    """One part of the lake the policy declares access for: the root, a zone, or the run's work folders."""

    name: str                           # a zone name, `lake_root` or `work`
    access: str                         # owner | group | traverse (the root)
    folders: tuple[Path, ...]           # the folders it covers (a zone: its folder; work: every work folder)
    role: str | None
    unix_group: str | None
    clause: str

    @property
    def dir_mode(self) -> int:
        return ROOT_MODE if self.access == "traverse" else MODES[self.access][0]

    @property
    def file_mode(self) -> int:
        return 0 if self.access == "traverse" else MODES[self.access][1]

    @property
    def open_bits(self) -> int:
        return _ROOT_OPEN_BITS if self.access == "traverse" else _OPEN_BITS[self.access]


def scopes(lake: Lake, access: AccessRule) -> tuple[Scope, ...]:
    """The root, every zone in the policy's order, then the work folders."""
    def of(z: ZoneAccess, folders: tuple[Path, ...]) -> Scope:
        return Scope(z.zone, z.access, folders, z.group.role if z.group else None,
                     z.group.unix_group if z.group else None, z.clause)
    return (Scope(ROOT, "traverse", (lake.root,), None, None, access.clause),
            *(of(z, (lake.zone(z.zone),)) for z in access.zones),
            of(access.work, tuple(lake.root / d for d in WORK_DIRS)))


def prepare_lake(lake: Lake, access: AccessRule) -> None:
    """Make what is missing of the lake with the policy's modes: the root, every zone, the work folders. What
    exists is left as it is (`check_lake` judges it, `apply_lake` fixes it): a run never loosens a folder.

    An empty folder given as the lake (`mkdir lake` makes it 0755) is a new lake, not an open one: it holds
    nothing yet, so it takes the root's mode like a root the run makes itself."""
    made_root = False
    if not lake.root.is_dir():
        try:
            lake.root.mkdir(parents=True, mode=0o700)
            made_root = True
        except FileExistsError:     # two runs started at once: the other one made it a moment ago
            pass
    if made_root or not any(os.scandir(lake.root)):
        os.chmod(lake.root, ROOT_MODE)
    for scope in scopes(lake, access)[1:]:
        gid = group_id(scope.unix_group) if scope.unix_group else None
        for folder in scope.folders:
            if folder.is_dir():
                continue
            make_dirs(folder.parent)
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:
                continue
            if gid is not None:
                _chown_group(folder, gid)
            os.chmod(folder, scope.dir_mode)     # after the chown, which may clear setgid


def _chown_group(path: Path | str, gid: int) -> bool:
    """Give an entry the zone's group; False where this account may not (not root, not a member)."""
    try:
        os.chown(path, -1, gid, follow_symlinks=False)
        return True
    except PermissionError:
        return False


# ------------------------------------------------------------------------------------------ the check

@dataclass(frozen=True)
class ScopeCheck:
    """What the check found in one scope: entries (folders and files) and how many are looser than declared."""

    scope: str
    access: str
    role: str | None
    unix_group: str | None
    group_on_host: bool | None          # None: not a group zone
    dir_mode: int
    file_mode: int
    clause: str
    entries: int = 0
    open: int = 0
    other_group: int = 0                # group zone, its group on the host: entries not in that group
    example: str | None = None          # one open entry, relative to the lake (masked)
    example_mode: int | None = None
    unlisted: int = 0                   # folders this account may not list (a reader's check): contents unchecked

    @property
    def ok(self) -> bool:
        return self.open == 0

    def modes_words(self) -> str:
        if self.access == "traverse":
            return f"{self.dir_mode:04o}"
        return f"dirs {self.dir_mode:04o}, files {self.file_mode:04o}"

    def group_words(self) -> str:
        if self.unix_group is None:
            return "-"
        if not self.group_on_host:
            return f"{self.unix_group} (not on this host: the pipeline account's group)"
        return self.unix_group + (f" ({self.other_group:,} entries in another group)" if self.other_group else "")

    def unlisted_words(self) -> str:
        return f"   ({self.unlisted:,} folder(s) not listable by this account: not checked inside)" if self.unlisted else ""


@dataclass(frozen=True)
class LakeCheck:
    """The whole lake held to the policy's `access`."""

    scopes: tuple[ScopeCheck, ...]
    seconds: float = 0.0
    policy_clause: str = ""

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.scopes)

    @property
    def open_scopes(self) -> tuple[ScopeCheck, ...]:
        return tuple(s for s in self.scopes if not s.ok)

    @property
    def entries(self) -> int:
        return sum(s.entries for s in self.scopes)

    @property
    def open(self) -> int:
        """Entries looser than declared, in every scope."""
        return sum(s.open for s in self.scopes)

    def table(self) -> list[str]:
        """One line per scope: access, modes, group, entries checked and open."""
        lines = [f"{'zone':<12} {'access':<9} {'modes':<22} {'checked':>8} {'open':>6}  group"]
        for s in self.scopes:
            lines.append(f"{s.scope:<12} {s.access:<9} {s.modes_words():<22} {s.entries:>8,} {s.open:>6,}"
                         f"  {s.group_words()}" + (f"   e.g. {s.example} is {s.example_mode:04o}" if s.example else "")
                         + s.unlisted_words())
        return lines

    def open_words(self) -> str:
        """The open scopes in a line: 'billing: 12 of 40 entries open (e.g. billing/… is 0644; declared …)'."""
        return "; ".join(
            f"the lake root is {s.example_mode:04o} (declared {s.dir_mode:04o}: others may pass, not list)"
            if s.access == "traverse" else
            f"{s.scope}: {s.open:,} of {s.entries:,} entries open (e.g. {s.example} is {s.example_mode:04o};"
            f" {s.access} access allows {s.modes_words()})" for s in self.open_scopes)


FIX = ("`cdr-audit permissions --apply --lake LAKE` gives every entry its zone's modes (or chmod: go-rwx in owner"
       " zones, o-rwx in group zones, 0711 on the lake root)")


class ZonesOpen(RuntimeError):
    """A zone (or the lake root) is looser than the policy's `access` declares: a run refuses to start. The
    message names the zones, how many entries are open, one example path relative to the lake and the fix."""

    def __init__(self, check: LakeCheck):
        self.check = check
        super().__init__(f"zone(s) readable beyond the policy's access (docs/design.md §2): {check.open_words()}."
                         f" Fix: {FIX}; or run with --allow-open-zones (DAG param allow_open_zones), which the"
                         " audit log records")


def check_lake(lake: Lake, access: AccessRule) -> LakeCheck:
    """Every entry of the lake held to its scope's declared access; reads only (lstat), changes nothing."""
    started = time.monotonic()
    work = {str(lake.root / d) for d in WORK_DIRS}
    found = []
    for scope in scopes(lake, access):
        gid = group_id(scope.unix_group) if scope.unix_group else None
        counts = {"entries": 0, "open": 0, "other_group": 0, "unlisted": 0}
        example: dict[bool, tuple[str, os.stat_result]] = {}     # the first open folder, the first open file
        for folder in scope.folders:
            if scope.access == "traverse":
                entries = _entry(folder)
            else:
                entries = _walk(folder, skip=work if scope.name != WORK else set(), unlisted=counts)
            for path, st in entries:
                counts["entries"] += 1
                if st.st_mode & scope.open_bits:
                    counts["open"] += 1
                    example.setdefault(stat.S_ISDIR(st.st_mode), (path, st))
                if gid is not None and st.st_gid != gid:
                    counts["other_group"] += 1
        # A file says more than its folder: a file when one is open.
        shown = example.get(False) or example.get(True)
        found.append(ScopeCheck(scope=scope.name, access=scope.access, role=scope.role, unix_group=scope.unix_group,
                                group_on_host=(gid is not None) if scope.unix_group else None,
                                dir_mode=scope.dir_mode, file_mode=scope.file_mode, clause=scope.clause,
                                example=_shown(lake, shown[0]) if shown else None,
                                example_mode=stat.S_IMODE(shown[1].st_mode) if shown else None, **counts))
    return LakeCheck(tuple(found), time.monotonic() - started, access.clause)


def _entry(path: Path) -> Iterator[tuple[str, os.stat_result]]:
    try:
        yield str(path), os.lstat(path)
    except FileNotFoundError:
        return


def _walk(top: Path, skip: set[str], unlisted: dict | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """`top` and every folder and file below it (lstat; symlinks are neither followed nor judged), except the
    subtrees in `skip`. A folder this account may not list (a compliance reader's check of an owner zone) is
    judged by its own mode and counted in `unlisted["unlisted"]`."""
    stack = []
    for path, st in _entry(top):
        yield path, st
        stack.append(path)
    while stack:
        folder = stack.pop()
        try:
            it = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            if unlisted is not None:
                unlisted["unlisted"] += 1
            continue
        with it:
            for e in it:
                if e.path in skip:
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue            # removed meanwhile (a run's own clean-up)
                if stat.S_ISLNK(st.st_mode):
                    continue
                yield e.path, st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)


def _shown(lake: Lake, path: str) -> str:
    rel = os.path.relpath(path, lake.root)
    return "the lake root" if rel == "." else _LOOKS_LIKE_NUMBER.sub("<masked>", rel)


def refuse_open(check: LakeCheck, *, allow: bool) -> None:
    """Raise `ZonesOpen` when the check found an open entry, unless the run was told to go on."""
    if not check.ok and not allow:
        raise ZonesOpen(check)


# ------------------------------------------------------------------------------------------ fixing a lake

@dataclass(frozen=True)
class ScopeApplied:
    scope: str
    entries: int
    changed: int                        # entries whose mode or group was changed
    failed: int                         # entries this account may not change (another owner)
    group_set: bool | None = None       # group zone: its Unix group exists here and was given


@dataclass(frozen=True)
class LakeApplied:
    scopes: tuple[ScopeApplied, ...] = field(default_factory=tuple)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return sum(s.changed for s in self.scopes)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.scopes)


def apply_lake(lake: Lake, access: AccessRule) -> LakeApplied:
    """Give every entry of the lake its scope's declared modes (and a group zone's entries its Unix group, where
    the host has it): the way to bring a lake written by an earlier version, or opened by hand, to the policy.
    Read-only files stay read-only. Missing folders are made first (`prepare_lake`)."""
    started = time.monotonic()
    prepare_lake(lake, access)
    work = {str(lake.root / d) for d in WORK_DIRS}
    done = []
    for scope in scopes(lake, access):
        gid = group_id(scope.unix_group) if scope.unix_group else None
        entries = changed = failed = 0
        for folder in scope.folders:
            found = _entry(folder) if scope.access == "traverse" else _walk(
                folder, skip=work if scope.name != WORK else set())
            # Listed first, changed after: a folder made owner-only before its entries are listed stays
            # listable to root alone.
            for path, st in list(found):
                entries += 1
                is_dir = stat.S_ISDIR(st.st_mode)
                want = scope.dir_mode if is_dir else (
                    scope.file_mode if st.st_mode & stat.S_IWUSR else scope.file_mode & 0o444)
                try:
                    touched = False
                    if gid is not None and st.st_gid != gid:
                        os.chown(path, -1, gid, follow_symlinks=False)
                        touched = True
                    if touched or stat.S_IMODE(st.st_mode) != want:
                        os.chmod(path, want)     # after a chown, which clears setgid
                        touched = True
                    changed += touched
                except PermissionError:
                    failed += 1
        done.append(ScopeApplied(scope.name, entries, changed, failed,
                                 (gid is not None) if scope.unix_group else None))
    return LakeApplied(tuple(done), time.monotonic() - started)

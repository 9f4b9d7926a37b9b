"""transforms/lake/permissions.py: the policy's access as Unix modes — what a new entry gets, a tree applied,
the check that counts open entries (docs/design.md §2). Tiny hand-made trees."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from transforms.lake import Lake
from transforms.lake.commit import commit_file, commit_folder, exclusive
from transforms.lake.permissions import (
    MODES, ROOT_MODE, WORK_DIRS, ZonesOpen, apply_lake, check_lake, group_id, make_dirs, make_owner_only_dir,
    modes_under, owner_only, prepare_lake, refuse_open, settle_tree, umask_for,
)
from transforms.lake.zones import ZONE_NAMES


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture()
def lake(tmp_path, policy) -> Lake:
    lake = Lake.at(tmp_path / "lake")
    prepare_lake(lake, policy.access)
    return lake


@pytest.fixture()
def umask_022():
    """The usual interactive umask, so a test shows modes are set explicitly, not by luck of the umask."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_the_access_kinds_mean_these_modes():
    assert MODES == {"owner": (0o700, 0o600), "group": (0o2750, 0o640)}
    assert ROOT_MODE == 0o711


def test_prepare_makes_the_lake_with_the_policys_modes(lake, policy, umask_022):
    assert mode(lake.root) == ROOT_MODE
    for z in policy.access.zones:
        assert mode(lake.zone(z.zone)) == MODES[z.access][0], z.zone
    for d in WORK_DIRS:
        assert mode(lake.root / d) == 0o700, d
    assert {z.zone for z in policy.access.zones} == set(ZONE_NAMES)
    assert check_lake(lake, policy.access).ok


def test_prepare_never_loosens_what_is_there(tmp_path, policy):
    lake = Lake.at(tmp_path / "lake")
    lake.zone("analytics").mkdir(parents=True)
    lake.zone("analytics").chmod(0o700)                  # tighter than declared: left as it is
    prepare_lake(lake, policy.access)
    assert mode(lake.zone("analytics")) == 0o700


def test_an_empty_folder_given_as_the_lake_is_a_new_lake_not_an_open_one(tmp_path, policy, umask_022):
    lake = Lake.at(tmp_path / "made_by_hand")
    lake.root.mkdir()                                    # `mkdir lake`: 0755, nothing in it yet
    prepare_lake(lake, policy.access)
    assert mode(lake.root) == ROOT_MODE and check_lake(lake, policy.access).ok
    lake.root.chmod(0o755)                               # a lake with zones in it is judged, never changed
    prepare_lake(lake, policy.access)
    assert mode(lake.root) == 0o755 and not check_lake(lake, policy.access).ok


def test_two_runs_making_the_same_new_lake_at_once_both_go_on(tmp_path, policy, monkeypatch, umask_022):
    # The other run's mkdir lands between this run's "is it there?" and its own mkdir (seen in CI: two
    # `cdr-audit run` started on a lake folder that did not exist yet; the loser died of FileExistsError).
    lake = Lake.at(tmp_path / "lake")
    real_mkdir = Path.mkdir

    def other_run_was_first(self, *args, **kwargs):
        if self == lake.root and not self.exists():
            real_mkdir(self, 0o700)
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", other_run_was_first)
    prepare_lake(lake, policy.access)
    monkeypatch.undo()
    assert mode(lake.root) == ROOT_MODE and check_lake(lake, policy.access).ok


def test_an_owner_only_folder_is_0700_wherever_it_is(lake, tmp_path, umask_022):
    # A subject's export holds their raw numbers: never a group's, even made inside a group zone's folder.
    inside_group = lake.zone("analytics") / "export" / "of-one"
    make_owner_only_dir(inside_group)
    assert mode(inside_group) == 0o700 and mode(inside_group.parent) == 0o2750
    existing = tmp_path / "existing"
    existing.mkdir()
    existing.chmod(0o2775)
    make_owner_only_dir(existing)
    assert mode(existing) == 0o700


def test_new_entries_take_their_folders_access(lake, tmp_path, umask_022):
    made = lake.zone("analytics") / "event_date=2026-11-22" / "deeper"
    make_dirs(made)
    assert mode(made) == mode(made.parent) == 0o2750
    owner = lake.zone("billing") / "event_date=2026-11-22"
    make_dirs(owner)
    assert mode(owner) == 0o700
    assert modes_under(lake.zone("audit")) == MODES["group"] and modes_under(owner) == MODES["owner"]

    for zone, want in (("billing", 0o600), ("analytics", 0o640)):
        tmp = tmp_path / f"{zone}.tmp"
        tmp.write_bytes(b"x")
        assert mode(tmp) == 0o644                         # as the umask made it ...
        final = lake.zone(zone) / "event_date=2026-11-21" / "part-0123456789abcdef.parquet"
        commit_file(tmp, final)
        assert mode(final) == want, zone                  # ... committed with the zone's mode
        assert mode(final.parent) == MODES["owner" if zone == "billing" else "group"][0]


def test_a_committed_folder_is_owner_only_while_filled_then_takes_the_zones_modes(lake, umask_022):
    seen = {}

    def fill(stage: Path) -> None:
        seen["stage"] = mode(stage)
        (stage / "cells.parquet").write_bytes(b"x")
        (stage / "day.parquet").write_bytes(b"y")

    final = lake.zone("aggregates") / "event_date=2026-11-22"
    commit_folder(final, fill)
    assert seen["stage"] & 0o077 == 0                    # nobody else could see the rows being staged
    assert mode(final) == 0o2750
    assert mode(final / "cells.parquet") == mode(final / "day.parquet") == 0o640
    owner = lake.zone("billing") / "event_date=2026-11-22"
    commit_folder(owner, fill)
    assert mode(owner) == 0o700 and mode(owner / "cells.parquet") == 0o600


def test_settle_tree_keeps_a_read_only_file_read_only(tmp_path):
    folder = tmp_path / "zone"
    folder.mkdir()
    folder.chmod(0o2750)
    stage = tmp_path / "zone" / ".staging-x"
    stage.mkdir()
    (stage / "anchor.json").write_text("{}")
    (stage / "anchor.json").chmod(0o444)
    settle_tree(stage, folder)
    assert mode(stage / "anchor.json") == 0o440 and mode(stage) == 0o2750


def test_a_lock_file_is_readable_by_its_zones_group(lake, umask_022):
    with exclusive(lake.zone("audit") / ".writer.lock"):
        pass
    assert mode(lake.zone("audit") / ".writer.lock") == 0o640      # a reader takes a shared lock on it
    with exclusive(lake.root / "audit" / "_leases" / ".lock"):
        pass
    assert mode(lake.root / "audit" / "_leases" / ".lock") == 0o600


def test_umasks_for_the_entry_points_and_for_a_library_writing_into_a_zone(lake):
    before = os.umask(0o022)
    try:
        with owner_only():
            assert os.umask(0o077) == 0o077
        assert os.umask(0o022) == 0o022                 # restored
        with umask_for(lake.zone("reports")):
            (lake.zone("reports") / "page.html").write_text("x")
            os.mkdir(lake.zone("reports") / "static")
        with umask_for(lake.zone("billing")):
            (lake.zone("billing") / "x").write_text("x")
    finally:
        os.umask(before)
    assert mode(lake.zone("reports") / "page.html") == 0o640
    assert mode(lake.zone("reports") / "static") == 0o2750      # setgid from the folder, 0750 from the umask
    assert mode(lake.zone("billing") / "x") == 0o600


def test_the_check_counts_open_entries_per_zone_and_names_one(lake, policy):
    part = lake.zone("billing") / "event_date=2026-11-22" / "part-0123456789abcdef.parquet"
    make_dirs(part.parent)
    part.write_bytes(b"x")
    part.chmod(0o640)                                    # group bit in an owner zone: open
    (lake.zone("analytics") / "a.parquet").write_bytes(b"x")
    (lake.zone("analytics") / "a.parquet").chmod(0o640)  # as declared
    (lake.zone("analytics") / "b.parquet").write_bytes(b"x")
    (lake.zone("analytics") / "b.parquet").chmod(0o644)  # other bit in a group zone: open
    check = check_lake(lake, policy.access)
    by = {s.scope: s for s in check.scopes}
    assert [s.scope for s in check.scopes] == ["lake_root", *(z.zone for z in policy.access.zones), "work"]
    assert (by["billing"].entries, by["billing"].open) == (3, 1)
    assert by["billing"].example == "billing/event_date=2026-11-22/part-0123456789abcdef.parquet"
    assert by["billing"].example_mode == 0o640
    assert (by["analytics"].entries, by["analytics"].open, by["analytics"].example) == (3, 1, "analytics/b.parquet")
    assert {s.scope for s in check.open_scopes} == {"billing", "analytics"}
    # The work folders are checked as work (owner), not as the audit zone they sit in.
    assert by["work"].entries == len(WORK_DIRS) and by["work"].open == 0
    assert by["audit"].entries == 1
    with pytest.raises(ZonesOpen) as refused:
        refuse_open(check, allow=False)
    text = str(refused.value)
    assert "billing: 1 of 3 entries open" in text and "analytics: 1 of 3 entries open" in text
    assert "billing/event_date=2026-11-22/part-0123456789abcdef.parquet is 0640" in text
    assert "cdr-audit permissions --apply" in text and "--allow-open-zones" in text
    refuse_open(check, allow=True)                       # told to go on


def test_the_root_is_open_when_others_may_list_it_and_symlinks_are_not_judged(lake, policy):
    lake.root.chmod(0o755)
    (lake.zone("billing") / "link").symlink_to("/etc/passwd")
    check = check_lake(lake, policy.access)
    root = check.scopes[0]
    assert (root.scope, root.open, root.example, root.example_mode) == ("lake_root", 1, "the lake root", 0o755)
    assert "the lake root is 0755" in check.open_words()
    assert check.scopes[1].entries == 1                  # billing: its folder, not the symlink
    lake.root.chmod(0o751)                              # group may list: still beyond the declared 0711
    assert not check_lake(lake, policy.access).scopes[0].ok
    lake.root.chmod(0o711)
    assert check_lake(lake, policy.access).ok


def test_work_folders_anywhere_are_owner_only(lake, policy):
    (lake.root / "_work" / "run1").mkdir()
    (lake.root / "_work" / "run1").chmod(0o750)
    (lake.zone("audit") / "_pending" / "run1").mkdir()
    (lake.zone("audit") / "_pending" / "run1").chmod(0o2750)   # group zone's mode, but a work folder
    by = {s.scope: s for s in check_lake(lake, policy.access).scopes}
    assert by["work"].open == 2 and by["audit"].open == 0


def test_example_paths_are_masked(lake, policy):
    f = lake.zone("quarantine") / "night=2026-11-22" / "38640123456.parquet"
    make_dirs(f.parent)
    f.write_bytes(b"x")
    f.chmod(0o644)
    (example,) = [s.example for s in check_lake(lake, policy.access).open_scopes]
    assert example == "quarantine/night=2026-11-22/<masked>.parquet"


def test_a_group_missing_on_the_host_is_said_not_an_error(lake, policy):
    access = policy.access
    by = {s.scope: s for s in check_lake(lake, access).scopes}
    assert by["analytics"].unix_group == "cdr-analytics"
    assert by["analytics"].group_on_host is (group_id("cdr-analytics") is not None)
    assert by["billing"].group_on_host is None and by["billing"].unix_group is None
    assert check_lake(lake, access).ok


def test_a_group_on_the_host_counts_entries_of_another_group(lake, policy):
    # A role whose Unix group exists here: entries not in it are counted (its readers could not read them).
    import grp

    gid = os.getgid()
    name = grp.getgrgid(gid).gr_name
    roles = tuple(replace(g, unix_group=name) for g in policy.access.groups)
    zones = tuple(replace(z, group=next(g for g in roles if g.role == z.group.role)) if z.group else z
                  for z in policy.access.zones)
    access = replace(policy.access, groups=roles, zones=zones)
    by = {s.scope: s for s in check_lake(lake, access).scopes}
    assert by["audit"].group_on_host is True and by["audit"].other_group == 0
    if os.geteuid() == 0:
        os.chown(lake.zone("audit"), -1, gid + 1 if gid + 1 != 65534 else gid + 2)
        by = {s.scope: s for s in check_lake(lake, access).scopes}
        assert by["audit"].other_group == 1 and by["audit"].ok       # another group is not open
        applied = apply_lake(lake, access)
        assert {s.scope: s.group_set for s in applied.scopes}["audit"] is True
        assert os.stat(lake.zone("audit")).st_gid == gid and mode(lake.zone("audit")) == 0o2750


def test_apply_brings_an_open_lake_to_the_policy(lake, policy):
    anchor = lake.zone("audit") / "anchors" / "anchor-1.json"
    make_dirs(anchor.parent)
    anchor.write_text("{}")
    files = {lake.zone("billing") / "event_date=2026-11-22" / "part-a.parquet": 0o600,
             lake.zone("roaming") / "month=2026-10" / "part.parquet": 0o640,
             lake.root / "_work" / "r1" / "x.parquet": 0o600}
    for f in files:
        make_dirs(f.parent)
        f.write_bytes(b"x")
    for parent, dirs, names in os.walk(lake.root):       # what an earlier version left: 0755 / 0644
        for d in dirs:
            os.chmod(os.path.join(parent, d), 0o755)
        for n in names:
            os.chmod(os.path.join(parent, n), 0o644)
    lake.root.chmod(0o755)
    anchor.chmod(0o444)                                  # an earlier version's anchors: read-only for all
    assert not check_lake(lake, policy.access).ok
    applied = apply_lake(lake, policy.access)
    assert applied.changed == check_lake(Lake(lake.root), policy.access).entries and applied.failed == 0
    assert check_lake(lake, policy.access).ok
    for f, want in files.items():
        assert mode(f) == want, f
    assert mode(anchor) == 0o440                         # read-only stays read-only
    assert mode(lake.root) == ROOT_MODE and mode(lake.root / "_work" / "r1") == 0o700
    assert apply_lake(lake, policy.access).changed == 0  # idempotent


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another group needs root or membership of it")
def test_a_file_committed_into_a_group_zone_takes_the_zones_group(lake, tmp_path):
    zone = lake.zone("analytics")
    other = os.getgid() + 1 if os.getgid() + 1 != 65534 else os.getgid() + 2
    os.chown(zone, -1, other)
    zone.chmod(0o2750)                                   # the chown cleared setgid
    tmp = tmp_path / "made-in-work.parquet"              # made elsewhere: the process's group
    tmp.write_bytes(b"x")
    final = zone / "event_date=2026-11-22" / "part-0123456789abcdef.parquet"
    commit_file(tmp, final)
    assert os.stat(final.parent).st_gid == other        # setgid: the folder made inside keeps the group
    assert os.stat(final).st_gid == other and mode(final) == 0o640


def test_a_reader_that_may_not_list_a_zone_still_checks_the_rest(lake, policy, monkeypatch):
    # verify --permissions run by a compliance reader: billing (0700) cannot be listed; its folder's own mode is
    # judged, its contents counted as not checked, and the check goes on.
    real = os.scandir
    billing = str(lake.zone("billing"))

    def scandir(path):
        if str(path) == billing:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    check = check_lake(lake, policy.access)
    by = {s.scope: s for s in check.scopes}
    assert (by["billing"].entries, by["billing"].unlisted, by["billing"].ok) == (1, 1, True)
    assert check.ok and "not listable by this account" in "\n".join(check.table())

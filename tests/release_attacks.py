"""The differencing attacks on aggregate releases, as checks a test runs over a lake (docs/design.md §4).

* version minus version: no released file ever changes or goes (snapshots taken night after night), and no
  analytics part is named by two releases of a day — so no two releases share a row;
* late release minus nothing: every row of every table of a late release, read alone, describes at least k
  subscribers, counted from the analytics rows its manifest names (not from the release's own figures), and
  no cell of it minus its finer cells leaves fewer.
"""

from __future__ import annotations

import hashlib

from tests.transforms.privacy.conftest import read_tables
from tests.transforms.privacy.differencing import attack, read_rows
from transforms.lake import Lake
from transforms.policy import Policy
from transforms.privacy.releases import LATE, manifests, release_folder


def snapshot(lake: Lake) -> dict[str, str]:
    """sha256 of every file of the aggregates zone."""
    return {str(p.relative_to(lake.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(lake.zone("aggregates").rglob("*")) if p.is_file()}


def assert_released_once(lake: Lake, snaps: list[dict[str, str]], days) -> None:
    """Version minus version: no released file ever changes or goes, and no part is in two releases."""
    for before, after in zip(snaps, snaps[1:]):
        for path, digest in before.items():
            assert after.get(path) == digest, f"{path} changed after it was released"
    for day in days:
        named = [p for m in manifests(lake, day) for p in m.parts]
        assert len(named) == len(set(named)), f"a part of {day} is in two releases"


def recount(lake: Lake, policy: Policy, days) -> list[str]:
    """Late release minus nothing: every table of every late release, read alone, against the analytics rows
    its manifest names (not the release's own figures): each released figure must be those rows' own and
    describe k subscribers or more, and no released cell minus the release's finer released cells may leave
    fewer (the attacker of `tests/transforms/privacy/differencing.py`). A line per finding."""
    found = []
    for day in days:
        for m in (m for m in manifests(lake, day) if m.kind == LATE):
            rows = read_rows([lake.zone("analytics") / f"event_date={day}" / p for p in m.parts])
            folder = release_folder(lake, day, m.release)
            tables = read_tables(folder)
            found += [f"{day}#{m.release}: {line}" for line in attack(rows, {day: tables}, policy,
                                                                       policy.k_anonymity)]
    return found


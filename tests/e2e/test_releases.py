"""Aggregates released once, end to end: generated nights and late files through `cdr-audit run`
(docs/design.md §4, policy aggregate_release).

Nights 20, 21 and 23 Nov land their own extracts; 23 Nov closes the window of 19 and 20 Nov (3 days) and
releases them. Then late files for 20 Nov: on the 24th a small one (three subscribers: below k alone, so
it waits), on the 25th a generated one (passing k with it: one late release of both). Across all of it no
released file changes, no part is in two releases, no figure of a late release is under k counted from its
own rows, and a re-run of a night changes no byte of the aggregates zone.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import audit_rows, run_cli
from tests.release_attacks import assert_released_once, recount, snapshot
from transforms.lake import Lake
from transforms.policy import load_policy

pytestmark = pytest.mark.slow

DAY = "2026-11-20"
HEADER = b"origin_number,destination_number,direction,start_time,duration_s,service_type\n"


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    from sample_data.generate import generate_night

    root = tmp_path_factory.mktemp("releases")
    lake = Lake.at(root / "lake")
    landings: dict[str, Path] = {}
    for night in ("2026-11-20", "2026-11-21", "2026-11-23"):
        landings[night] = root / night
        generate_night(landings[night], rows=600, seed=5, night=date.fromisoformat(night))
    landings["2026-11-24"] = root / "2026-11-24"
    landings["2026-11-24"].mkdir()
    (landings["2026-11-24"] / "late_calls.csv").write_bytes(HEADER + b"".join(
        f"+3864099{i:04d},+38641333444,outgoing,{DAY}T10:00:00Z,60,call\n".encode() for i in range(3)))
    landings["2026-11-25"] = root / "2026-11-25"
    generate_night(landings["2026-11-25"], rows=400, seed=5, night=date.fromisoformat(DAY))   # a late redelivery
    runs, snaps = {}, {}
    for night, landing in landings.items():
        runs[night] = run_cli("run", "--landing", str(landing), "--lake", str(lake.root), "--date", night)
        assert runs[night].returncode == 0, runs[night].stderr[-3000:]
        snaps[night] = snapshot(lake)
    return lake, landings, runs, snaps


def releases_of(lake: Lake, day: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((lake.zone("aggregates") / f"event_date={day}")
                                                      .glob("release=*/_release.json"))]


def test_days_are_released_by_the_night_their_window_closes(nights):
    lake, _, runs, snaps = nights
    assert snaps["2026-11-20"] == snaps["2026-11-21"] == {}
    released = audit_rows(lake.root, "SELECT a.event_date, a.release_number, a.release_kind, a.window_closes_on,"
                                     " r.night FROM aggregate_releases a JOIN runs r USING (run_id)"
                                     " WHERE a.release_kind = 'day' ORDER BY 1")
    # 20 Nov's window (3 days) closes on 23 Nov: that night's run releases it, from every part it then had.
    assert (date(2026, 11, 20), 1, "day", date(2026, 11, 23), date(2026, 11, 23)) in released
    assert all(on <= night and (night - d).days >= 3 for d, _, _, on, night in released)
    assert "aggregates 2026-11-20 release 1 (day," in runs["2026-11-23"].stderr


def test_late_rows_wait_below_k_then_make_one_late_release(nights):
    lake, _, runs, snaps = nights
    # Three late subscribers of 20 Nov: nothing of them released (the night releases 21 Nov, whose window closed).
    of_day = {night: {p: d for p, d in snap.items() if f"event_date={DAY}/" in p} for night, snap in snaps.items()}
    assert of_day["2026-11-24"] == of_day["2026-11-23"] != {}
    waiting = audit_rows(lake.root, "SELECT w.reason, w.rows_waiting FROM aggregate_waiting w JOIN runs r"
                                    " USING (run_id) WHERE r.night = DATE '2026-11-24' AND w.event_date = ?", [DAY])
    assert waiting == [("below_k", 3)]
    assert "waiting until their rows pass k" in runs["2026-11-24"].stderr
    day_release, late = releases_of(lake, DAY)
    assert (day_release["release"], day_release["kind"], late["release"], late["kind"]) == (1, "day", 2, "late")
    small = [p for p in late["parts"] if p not in day_release["parts"]]
    assert small == late["parts"] and len(late["parts"]) >= 2       # the small file waited and went with it
    (kind, parts, rows), = audit_rows(lake.root, "SELECT DISTINCT release_kind, parts, rows_aggregated"
                                                 " FROM aggregate_releases WHERE event_date = ? AND release_number = 2",
                                      [DAY])
    assert (kind, parts, rows) == ("late", len(late["parts"]), late["rows"]) and rows > 3
    view = audit_rows(lake.root, "SELECT DISTINCT release_number, release_kind FROM v_aggregate_releases"
                                 " WHERE event_date = ? ORDER BY release_number", [DAY])
    assert view == [(1, "day"), (2, "late")]


def test_no_release_ever_changes_and_no_late_figure_is_under_k(nights):
    lake, _, _, snaps = nights
    days = sorted(p.name.split("=", 1)[1] for p in lake.zone("aggregates").glob("event_date=*"))
    assert_released_once(lake, list(snaps.values()), days)
    assert recount(lake, load_policy(), days) == []


def test_a_re_run_of_a_night_changes_no_byte_of_the_aggregates_zone(nights):
    lake, landings, _, snaps = nights
    again = run_cli("run", "--landing", str(landings["2026-11-25"]), "--lake", str(lake.root), "--date", "2026-11-25")
    assert again.returncode == 0, again.stderr[-3000:]
    assert snapshot(lake) == snaps["2026-11-25"]
    assert "release 1 (day," not in again.stderr and "(late," not in again.stderr


def test_with_a_category_the_sweep_deletes_a_days_releases_whole_and_proves_it(nights, tmp_path):
    import shutil

    import yaml

    from tests.transforms.retention.test_release_retention import with_category
    from transforms.bundled import DEFAULT_POLICY

    lake, _, _, _ = nights
    copy = tmp_path / "lake"
    shutil.copytree(lake.root, copy, symlinks=True)
    doc = yaml.safe_load(DEFAULT_POLICY.read_text())
    with_category(doc, keep="P1M")                   # kept through 20 Dec, due on 21 Dec
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    swept = run_cli("retention", "--lake", str(copy), "--as-of", "2026-12-21", "--policy", str(policy), "--demo")
    assert swept.returncode == 0, swept.stderr[-3000:]
    gone = audit_rows(copy, "SELECT partition, action, files FROM retention_actions WHERE dataset = 'aggregates'"
                            " AND partition = ?", [f"event_date={DAY}"])
    files = len(list((lake.zone("aggregates") / f"event_date={DAY}").glob("release=*/*")))
    assert gone == [(f"event_date={DAY}", "deleted", files)]
    proofs = audit_rows(copy, "SELECT count(*), bool_and(ok) FROM retention_proofs WHERE dataset = 'aggregates'"
                              " AND partition = ?", [f"event_date={DAY}"])
    assert proofs == [(files, True)]
    assert [p.name for p in (copy / "aggregates" / f"event_date={DAY}").iterdir()] == ["_retired.json"]
    kept = audit_rows(copy, "SELECT action, due_on FROM retention_actions WHERE dataset = 'aggregates'"
                            " AND partition = 'event_date=2026-11-21'")
    assert kept == [("kept", date(2026, 12, 22))]   # 21 Nov (released on the 24th): kept through 21 Dec

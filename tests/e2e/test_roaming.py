"""Roaming fair use end to end: five generated months through the CLI, the window assessed, flags audited."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pytest

from tests.conftest import HISTORY_NIGHTS, audit_rows, run_cli
from tests.leakscan import identifier_variants, scan

pytestmark = pytest.mark.slow


def test_every_month_is_built_and_the_window_assessed(history):
    months = sorted(p.name for p in (history.lake / "roaming").glob("month=*"))
    assert months == [f"month={n[:7]}" for n in HISTORY_NIGHTS]
    # The last night (November) assesses the window ending with October: July to October.
    rows = audit_rows(history.lake, "SELECT kind, month, flagged, not_flagged, insufficient_history FROM roaming_runs"
                                    " WHERE kind = 'window' ORDER BY run_id")
    assert [r[1] for r in rows] == ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    kind, month, flagged, not_flagged, insufficient = rows[-1]
    # Subscribers abroad every night (the generator's permanent roamers) are flagged; the rest are not;
    # earlier windows lack history (the lake starts in July) and flag nobody.
    assert flagged > 0 and not_flagged > flagged
    assert all(r[2] == 0 for r in rows[:-1])


def test_compliance_sees_each_flag_with_its_figures(history):
    flagged = audit_rows(history.lake, """
        SELECT hex(subscriber_token), days_home, days_eu_roaming, roaming_consumption_share, window_start_month
        FROM roaming_status WHERE as_of_month = '2026-10' AND state = 'flagged'""")
    assert flagged
    for token, home, abroad, share, start in flagged:
        assert len(token) == 32 and abroad > home and share > 0.5 and start == "2026-07"
    states = dict(audit_rows(history.lake, "SELECT state, count(*) FROM roaming_status WHERE as_of_month = '2026-10'"
                                           " GROUP BY 1"))
    assert set(states) <= {"flagged", "not_flagged", "insufficient_history"} and states["flagged"] == len(flagged)


def test_no_raw_identifier_in_the_roaming_zone(history):
    numbers = [n for m in history.manifests.values() for n in m.msisdns]
    imsis = [i for m in history.manifests.values() for i in m.imsis]
    assert scan([history.lake / "roaming"], identifier_variants(numbers, imsis, [], [])) == {}


def test_a_rerun_and_a_late_file_touch_only_their_month(history, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(history.lake, lake)
    months = {p.parent.name: p.read_bytes() for p in (lake / "roaming").glob("month=*/part.parquet")}
    # Re-running the September night: the same bytes everywhere.
    night = "2026-09-10"
    assert run_cli("run", "--landing", str(history.landings[night]), "--lake", str(lake), "--date", night,
                   "--quiet").returncode == 0
    assert {p.parent.name: p.read_bytes() for p in (lake / "roaming").glob("month=*/part.parquet")} == months
    # A late file: August's night delivered again under a new name with one more day (a copy shifted to
    # 11 August), on the November night. Only August changes.
    from sample_data.generate import generate_night

    late = tmp_path / "late"
    generate_night(late, rows=600, seed=21, night=date(2026, 8, 11))
    for extra in late.iterdir():
        if not extra.name.startswith("billing_") or extra.suffix != ".csv" or "copy" in extra.name:
            extra.unlink()
    assert run_cli("run", "--landing", str(late), "--lake", str(lake), "--date", "2026-11-22",
                   "--quiet").returncode == 0
    after = {p.parent.name: p.read_bytes() for p in (lake / "roaming").glob("month=*/part.parquet")}
    assert [m for m in after if after[m] != months[m]] == ["month=2026-08"]
    days = [duckdb.execute("SELECT sum(days_active) FROM read_parquet(?)", [str(root / "month=2026-08" / "part.parquet")])
            .fetchone()[0] for root in (history.lake / "roaming", lake / "roaming")]
    assert days[1] > days[0]          # the subscribers' extra day in August is counted

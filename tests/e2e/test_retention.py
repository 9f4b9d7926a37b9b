"""The retention sweep end to end: five generated months through the CLI, then swept, proven to the byte."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from tests.conftest import audit_rows, run_cli, zone_rows
from tests.leakscan import identifier_variants, scan

pytestmark = pytest.mark.slow

AS_OF = "2026-11-23"


@pytest.fixture(scope="module")
def swept(history, tmp_path_factory):
    """A copy of the five-month lake, its rows before the sweep, and the dry run's and the sweep's output."""
    lake = tmp_path_factory.mktemp("retention") / "lake"
    shutil.copytree(history.lake, lake)
    before = {
        "billing": zone_rows(lake, "billing", "SELECT record_id, origin_number, direction, event_date FROM t"),
        "analytics": zone_rows(lake, "analytics", "SELECT count(*) FROM t")[0][0],
    }
    dry = run_cli("retention", "--lake", str(lake), "--as-of", AS_OF, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    files_after_dry = sorted(p for p in lake.rglob("*.parquet") if "audit" not in p.parts)
    real = run_cli("retention", "--lake", str(lake), "--as-of", AS_OF)
    assert real.returncode == 0, real.stderr
    return lake, before, dry, real, files_after_dry


def test_paid_months_go_and_the_rest_stays(swept):
    lake, before, dry, real, _ = swept
    after = zone_rows(lake, "billing", "SELECT record_id, origin_number, direction, event_date FROM t")
    removed = {r[0] for r in before["billing"]} - {r[0] for r in after}
    # Something of September/October went (paid invoices), and something stayed (unpaid, November).
    assert removed and after
    assert all(r[3] < date(2026, 11, 1) for r in before["billing"] if r[0] in removed)
    months_left = {r[3].month for r in after}
    assert 11 in months_left and months_left & {9, 10}      # unpaid September/October calls stay
    # The dry run announced exactly what the real sweep then did.
    assert [line for line in dry.stdout.splitlines() if "anonymized" in line] == \
        [line for line in real.stdout.splitlines() if "anonymized" in line]
    (anonymized,), = audit_rows(lake, "SELECT sum(rows) FROM retention_actions WHERE action = 'anonymized'"
                                      " AND dataset = 'billing'")
    assert anonymized == len(removed)


def test_dry_run_left_every_file_as_it_was(swept):
    lake, _, dry, _, files_after_dry = swept
    assert "dry run: nothing written" in dry.stdout and "would remove" in dry.stdout
    assert files_after_dry     # (the listing before the real sweep, taken right after the dry run)


def test_analytics_never_outlive_their_source(swept):
    lake, before, _, _, _ = swept
    billed = zone_rows(lake, "billing", "SELECT event_date, count(*) FROM t GROUP BY 1 ORDER BY 1")
    derived = zone_rows(lake, "analytics", "SELECT event_date, count(*) FROM t GROUP BY 1 ORDER BY 1")
    assert derived == billed                       # row for row, day by day
    assert sum(n for _, n in derived) < before["analytics"]


def test_removed_rows_are_gone_from_every_byte(swept):
    from transforms.policy import load_policy
    from transforms.privacy.numbers import normalize_e164

    operator = load_policy().operator

    lake, before, _, _, _ = swept
    after = zone_rows(lake, "billing", "SELECT record_id FROM t")
    removed_ids = sorted({r[0] for r in before["billing"]} - {r[0] for r in after})
    # Numbers none of whose spellings is left in any number column of any billing row.
    left = {normalize_e164(n, operator) for row in zone_rows(lake, "billing", "SELECT origin_number, destination_number,"
                                                      " redirection_number FROM t") for n in row if n}
    gone = sorted({normalize_e164(r[1], operator) for r in before["billing"] if r[1]} - left)
    assert removed_ids and gone
    needles = removed_ids + identifier_variants(gone, [], [], [])
    # Every billing file, decompressed and raw; quarantine keeps its own rows, but none of the removed ones.
    assert scan([lake / "billing"], needles) == {}
    assert scan([lake / "quarantine"], removed_ids) == {}
    (ok, found, n), = audit_rows(lake, "SELECT bool_and(ok), sum(identifiers_found), count(*) FROM retention_proofs")
    assert ok and found == 0 and n > 0


def test_audit_holds_counts_not_values(swept):
    lake, before, _, real, _ = swept
    numbers = sorted({r[1] for r in before["billing"] if r[1]})
    assert scan([lake / "audit"], numbers[:200], real.stdout + real.stderr) == {}
    (chain_ok,), = [(run_cli("verify", "--lake", str(lake)).returncode == 0,)]
    assert chain_ok

"""Marketing profiles end to end: a generated night through `cdr-audit run`, with consent register rows written
by the test in the register's layout (policy §3.4 ¶5; docs/design.md §11)."""

from __future__ import annotations

import os
import stat
from datetime import date, datetime, timedelta

import pytest

from tests.conftest import NIGHT, audit_rows, run_cli, zone_rows
from tests.leakscan import night_identifiers, scan
from tests.transforms.marketing.conftest import land_consents
from transforms.lake import Lake
from transforms.policy import load_policy
from transforms.privacy.keys import load_keyring
from transforms.privacy.purpose import marketing_tokens
from transforms.privacy.tokens import derive_tokens

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def consent_run(night, tmp_path_factory):
    """A third of the night's subscribers consented on 1 Nov; one of them withdrew the day before the night."""
    landing, manifest = night
    numbers = list(manifest.msisdns)
    consented, withdrew = numbers[: len(numbers) // 3], numbers[0]
    lake = Lake.at(tmp_path_factory.mktemp("marketing") / "lake")
    land_consents(lake, "a", [(n, "granted", datetime(2026, 11, 1, 9)) for n in consented])
    land_consents(lake, "b", [(withdrew, "withdrawn", datetime.fromisoformat(NIGHT) - timedelta(hours=10))])
    for p in lake.zone("consents").rglob("*"):           # the register is owner-only (policy access)
        p.chmod(0o700 if p.is_dir() else 0o600)
    lake.zone("consents").chmod(0o700)
    lake.root.chmod(0o711)
    run = run_cli("run", "--landing", str(landing), "--lake", str(lake.root), "--date", NIGHT)
    assert run.returncode == 0, run.stderr[-3000:]
    return run, manifest, consented[1:], [n for n in numbers if n not in consented] + [withdrew]


def test_only_consenting_subscribers_are_profiled(consent_run):
    run, manifest, consented, others = consent_run
    policy, keyring = load_policy(), load_keyring(os.environ)
    kid = keyring.current.key_id
    tokens = {bytes(t) for (t,) in zone_rows(run.lake, "marketing", "SELECT subscriber_token FROM t")}
    assert tokens, "nobody was profiled"
    allowed = {bytes.fromhex(marketing_tokens(n, keyring, policy)[kid]) for n in consented}
    assert tokens <= allowed
    named = {bytes(t) for (t,) in zone_rows(run.lake, "marketing",
                                             "SELECT unnest(called_parties_consented) FROM t")}
    assert named <= allowed
    assert {k for (k,) in zone_rows(run.lake, "marketing", "SELECT DISTINCT hmac_key_id FROM t")} == {kid}
    # Those without a standing consent: not by number, not by either token, anywhere in the zone.
    needles = [*night_identifiers(manifest)]
    for n in [*others, *consented]:
        needles.append(bytes.fromhex(derive_tokens(n, "msisdn", keyring, policy.operator)[kid]))
    for n in others:
        needles.append(bytes.fromhex(marketing_tokens(n, keyring, policy)[kid]))
    assert scan([run.lake / "marketing"], needles) == {}
    assert scan([run.lake / "audit", run.lake / "reports"], night_identifiers(manifest), run.stdout + run.stderr) == {}


def test_the_zone_has_the_marketers_modes(consent_run):
    run = consent_run[0]
    zone = run.lake / "marketing"
    entries = [zone, *zone.rglob("*")]
    assert any(p.suffix == ".parquet" for p in entries)
    for p in entries:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o2750 if p.is_dir() else 0o640), (p, oct(mode))


def test_the_audit_store_records_what_the_step_did(consent_run):
    run = consent_run[0]
    rows = audit_rows(run.lake, "SELECT event_date, subscribers, called_named, called_counted, rows_removed,"
                                " consents_standing, path FROM marketing_profiles ORDER BY event_date")
    assert rows and sum(r[1] for r in rows) == len(zone_rows(run.lake, "marketing", "SELECT 1 FROM t"))
    assert all(r[4] == 0 for r in rows) and {r[5] for r in rows} == {len(consent_run[2])}
    for event_date, subscribers, *_, path in rows:
        assert (path is None) == (subscribers == 0)
        assert path is None or path == f"marketing/event_date={event_date}/part.parquet"
    assert "marketing:" in run.stderr and "day(s) rebuilt" in run.stderr
    assert date.fromisoformat(NIGHT) >= min(r[0] for r in rows)

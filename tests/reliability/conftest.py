"""The reliability suite's shared material: one small generated night and the format fixtures, as sources.

Size: CDR_AUDIT_RELIABILITY_SCALE (1 in CI; `make reliability` sets more). Seed: CDR_AUDIT_RELIABILITY_SEED
(fixed in CI so a red run reproduces; printed in every failure and in the session header).
"""

from __future__ import annotations

import pickle
from datetime import date

import pytest

from tests.reliability.harness import NIGHT, REPO, SCALE, SEED
from tests.reliability.mutations import Source, load_sources


def pytest_report_header(config):
    return f"reliability: scale {SCALE}, seed {SEED} (CDR_AUDIT_RELIABILITY_SCALE / CDR_AUDIT_RELIABILITY_SEED)"


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    """A small generated night (every defect kind of the generator, sample_data/generate) and its manifest."""
    from sample_data.generate import generate_night

    root = tmp_path_factory.mktemp("rel_generated")
    manifest = generate_night(root / NIGHT, rows=300, seed=SEED, night=date.fromisoformat(NIGHT))
    (root / "manifest.pickle").write_bytes(pickle.dumps(manifest))
    return root / NIGHT, manifest


@pytest.fixture(scope="session")
def sources(generated) -> list[Source]:
    landing, manifest = generated
    return load_sources(landing, manifest, REPO / "tests" / "fixtures" / "formats")


# Raw identifiers written by hand in tests/fixtures/formats (invented, see its README): none may leave the
# billing and quarantine zones.
FIXTURE_IDENTIFIERS = ["293401234567890", "293401234567891", "352099001761481", "3520990017614823",
                       "38641123456", "+38641123456", "041123456", "0038641765432", "4930123456", "38640111222",
                       "Ana Novak", "Bor Kos"]


@pytest.fixture(scope="session")
def small_night(generated, tmp_path_factory):
    """The night the killed and concurrent runs audit: three files of three formats (a canonical CSV with the
    generator's defects, the payments extract, a TS 32.298 export) — small, so ten kills fit in CI."""
    import shutil

    landing, _ = generated
    out = tmp_path_factory.mktemp("rel_small") / NIGHT
    out.mkdir()
    for name in (f"billing_{NIGHT}.csv", f"payments_{NIGHT}.csv"):
        shutil.copy(landing / name, out / name)
    shutil.copy(REPO / "tests" / "fixtures" / "formats" / "ts32298_ps.csv", out / f"ts32298_ps_{NIGHT}.csv")
    return out


@pytest.fixture(scope="session")
def reference(small_night, tmp_path_factory):
    """A clean run of the small night in its own lake (not --quiet: its progress lines place the kills)."""
    from tests.reliability.harness import run_cli

    lake = tmp_path_factory.mktemp("rel_reference") / "lake"
    run = run_cli(small_night, lake, "--run-id", "reference", quiet=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return lake, run

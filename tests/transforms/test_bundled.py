"""transforms/bundled.py: the files shipped with the project are where the engine looks for them."""

from __future__ import annotations

import json

from transforms.bundled import BILLING_SUITE, DEFAULT_POLICY, REPO_ROOT, SAMPLE_NIGHT
from transforms.policy import load_policy


def test_the_bundled_files_are_there_and_are_what_the_engine_loads():
    assert (REPO_ROOT / "transforms" / "bundled.py").is_file()
    assert load_policy().path == str(DEFAULT_POLICY)
    assert json.loads(BILLING_SUITE.read_text())["expectations"]
    assert sorted(p.suffix for p in SAMPLE_NIGHT.iterdir()) and any(SAMPLE_NIGHT.glob("*.csv"))

"""Where the files shipped with the project live: the policy, the source formats, the expectation suites,
the reference tables and the sample night. Everything else the pipeline reads comes from the user (landing, lake)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = REPO_ROOT / "policy" / "a1_slovenia.yaml"
BILLING_SUITE = REPO_ROOT / "expectations" / "billing_cdr.json"
SAMPLE_NIGHT = REPO_ROOT / "sample_data" / "night"
BUILTIN_FORMATS = REPO_ROOT / "formats"

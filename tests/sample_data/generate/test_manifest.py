"""The manifest tells the truth: record counts and sizes per file, and every defect kind is injected."""

from __future__ import annotations

import pyarrow.parquet as pq

from sample_data.generate import ALL_DEFECT_KINDS

from .common import T, _records


def test_row_counts_match_manifest(night):
    out, manifest = night
    for name, f in manifest.files.items():
        path = out / name
        assert f.bytes == path.stat().st_size, name
        if name.endswith(".parquet"):
            assert pq.read_metadata(path).num_rows == f.rows
            continue
        encoding = "cp1250" if name.startswith("latin1_") else "utf-8"
        records = _records(path, encoding)
        header = 0 if (f.profile in (None, "asterisk_master_18", "freeswitch_cdr_csv")) else 1
        assert len(records) - header == f.rows, name


def test_every_defect_kind_is_injected(night):
    _, manifest = night
    for kind in ALL_DEFECT_KINDS:
        assert manifest.defect_count(kind) >= 1, kind
    assert manifest.files[f"mediation_{T}.csv"].defects.keys() >= {
        "too_few_fields", "too_many_fields", "unterminated_quote", "overlong_field", "email_as_origin",
        "negative_duration", "unknown_service_type", "bad_imsi", "duplicate_row"}

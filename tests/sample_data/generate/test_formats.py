"""Every file is detected as the profile its format names (or as none), as the manifest says."""

from __future__ import annotations

import pyarrow.parquet as pq

from transforms.steps.profiles import PAYMENTS_PROFILE, detect, is_payments_header


def test_profiles_detected_as_manifest_says(night):
    out, manifest = night
    for name, f in manifest.files.items():
        path = out / name
        if f.profile == PAYMENTS_PROFILE:       # not a CDR format: the payments step takes it by its header
            assert is_payments_header(path.read_bytes()[: 1 << 16]) and detect(path.read_bytes()).profile is None
            continue
        if name.endswith(".parquet"):
            got = detect(b"", is_parquet_columns=tuple(pq.read_schema(path).names))
        else:
            got = detect(path.read_bytes()[: 1 << 16])
        assert (got.profile.name if got.profile else None) == f.profile, name

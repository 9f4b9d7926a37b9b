"""Every file is detected as the format the manifest names (or as none): the generator writes what the
format files say."""

from __future__ import annotations

import pyarrow.parquet as pq

from transforms.formats import load_formats
from transforms.formats.recognize import detect
from transforms.policy import load_policy
from transforms.steps.consents import CONSENTS_PROFILE, is_consents_extract
from transforms.steps.payments import PAYMENTS_PROFILE, is_payments_header


def test_formats_detected_as_manifest_says(night):
    out, manifest = night
    policy = load_policy()
    formats = load_formats(policy)
    for name, f in manifest.files.items():
        path = out / name
        head = path.read_bytes()[: 1 << 16]
        if f.profile == PAYMENTS_PROFILE:       # not a CDR format: the payments step takes it by its header
            assert is_payments_header(head) and detect(head, formats, policy).format is None
            continue
        if f.profile == CONSENTS_PROFILE:       # nor is the consent extract: its step takes it by its header
            assert is_consents_extract(head, "export.csv") and detect(head, formats, policy).format is None
            continue
        columns = tuple(pq.read_schema(path).names) if name.endswith(".parquet") else None
        got = detect(head, formats, policy, parquet_columns=columns)
        assert (got.format.name if got.format else None) == f.profile, name

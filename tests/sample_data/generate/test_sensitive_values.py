"""The manifest lists every not-allowed value written, and every value it lists was written."""

from __future__ import annotations

import re

import pyarrow.parquet as pq

from .common import T, _records


def test_all_not_allowed_values_are_in_manifest(night):
    out, manifest = night
    names, emails, ips = set(manifest.caller_names), set(manifest.emails), set(manifest.ip_addresses)
    records = _records(out / f"billing_{T}.csv")
    header = records[0]
    for r in records[1:]:
        row = dict(zip(header, r))
        if len(r) == len(header):
            assert row["caller_name"] in names and row["email"] in emails
            assert not row["ip_address"] or row["ip_address"] in ips
    med = _records(out / f"mediation_{T}.csv")
    for r in med[1:]:
        if len(r) > 16 and r[16]:
            assert r[16] in ips
    for r in _records(out / f"asterisk_Master_{T}.csv"):
        if len(r) > 4:
            assert re.fullmatch(r'"(.*)" <.*>', r[4]).group(1) in names
    for r in _records(out / f"freeswitch_{T}.csv"):
        assert r[0] in names
        if "@" in r[1]:
            assert r[1] in emails
    assert "Žiga Čeh" in names


def test_manifest_values_were_written(night):
    out, manifest = night
    text = "".join(p.read_bytes().decode("utf-8", errors="replace") for p in out.iterdir()
                   if p.suffix == ".csv")
    text += (out / f"latin1_{T}.csv").read_bytes().decode("cp1250")
    text += str(pq.read_table(out / f"billing_{T}.parquet").to_pylist())
    for values in (manifest.msisdns, manifest.imsis, manifest.imeis, manifest.caller_names, manifest.emails,
                   manifest.ip_addresses, manifest.cell_ids, manifest.payment_msisdns, manifest.account_ids):
        assert values
        assert all(v in text for v in values)

"""python -m sample_data.generate: the help documents everything; a quiet run writes a night and its manifest."""

from __future__ import annotations

import json

import pytest

from sample_data.generate import MIN_ROWS, main

from .common import _records


def test_cli_help_documents_everything(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--rows", "--out", "--seed", "--date", "--quiet", "--manifest", "mediation_", "asterisk_Master_",
                 "freeswitch_resaved_", "latin1_", "nul_byte_", "hostile_header_", "unterminated_quote",
                 "duplicate_row", "email_as_origin", "payments_", "duplicate_invoice", "bad_payment_status",
                 "--source", "ts32298_ps_", "recordOpeningTime", "servedIMEISV"):
        assert word in text, word


def test_cli_writes_night_and_manifest(tmp_path, capsys):
    assert main(["--rows", str(MIN_ROWS), "--out", str(tmp_path / "n"), "--seed", "3", "--date", "2026-03-29",
                 "--manifest", str(tmp_path / "m.json"), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["night"] == "2026-03-29" and doc["rows"] == MIN_ROWS
    med = _records(tmp_path / "n" / "mediation_2026-03-29.csv")
    offsets = {r[6][-6:] for r in med[1:] if len(r) == len(med[0])}
    assert offsets <= {"+01:00", "+02:00"}, "DST day: both offsets are possible"


def test_cli_source_writes_one_export_alone(tmp_path):
    assert main(["--rows", str(MIN_ROWS), "--out", str(tmp_path / "n"), "--seed", "3", "--source", "ts32298_ps",
                 "--quiet"]) == 0
    assert [p.name for p in (tmp_path / "n").iterdir()] == ["ts32298_ps_2026-11-22.csv"]
    records = _records(tmp_path / "n" / "ts32298_ps_2026-11-22.csv")
    assert len(records) == 1 + MIN_ROWS and records[0][0] == "recordType"

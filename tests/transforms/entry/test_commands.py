"""transforms/entry/commands.py: what the commands print over a small store."""

from __future__ import annotations

from transforms.audit_store import LogEvent, append_log, writing
from transforms.entry.commands import EXIT_OK, cmd_formats, cmd_policy, cmd_summary, cmd_verify
from transforms.lake import Lake


class Args:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_policy_lists_columns_and_retention(policy, capsys):
    assert cmd_policy(Args(policy=None)) == EXIT_OK
    out = capsys.readouterr().out
    assert policy.sha256 in out and "origin_number" in out and "billing_cdr" in out


def test_formats_lists_every_format_and_the_payments_extract(capsys):
    assert cmd_formats(Args(formats_command="list", formats=None, policy=None)) == EXIT_OK
    out = capsys.readouterr().out
    assert "asterisk_master_18" in out and "ts32298_ps" in out and "payments" in out
    assert cmd_formats(Args(formats_command="show", name="ts32298_ps", formats=None, policy=None)) == EXIT_OK
    out = capsys.readouterr().out
    assert "servedMSISDN" in out and "IMEI from the IMEISV" in out
    assert "origin_country_code    ← country calling code of the number in servedMSISDN (E.164 digits)" in out


def test_summary_and_verify_of_a_store_without_a_run(tmp_path, capsys):
    lake = Lake.at(tmp_path / "lake")
    with writing(lake) as con:
        append_log(con, [LogEvent("e1", "test", "hold_placed", "H-1", {"n": 1})])
    assert cmd_summary(Args(lake=lake.root, policy=None)) == EXIT_OK
    assert "holds no run yet" in capsys.readouterr().out
    assert cmd_verify(Args(lake=lake.root)) == EXIT_OK
    assert "intact: 1 entries" in capsys.readouterr().out

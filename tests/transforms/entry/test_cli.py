"""transforms/entry/cli.py: the parser, and errors turned into clear messages and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from transforms.entry.cli import build_parser, main
from transforms.entry.commands import COMMANDS


def test_every_command_has_help_and_a_handler():
    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices)     # argparse keeps them here
    assert names == set(COMMANDS)
    for name in names:
        with pytest.raises(SystemExit) as stop:
            parser.parse_args([name, "--help"])
        assert stop.value.code == 0


def test_help_loads_neither_duckdb_nor_great_expectations():
    out = subprocess.run([sys.executable, "-c", "import sys\nfrom transforms.entry import cli\ncli.build_parser()\n"
                          "print(sorted(m for m in ('duckdb', 'great_expectations', 'pandas') if m in sys.modules))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_bad_usage_is_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--landing", "x", "--lake", "y", "--date", "22.11.2026"])
    assert stop.value.code == 2
    assert "expected a date YYYY-MM-DD" in capsys.readouterr().err


def test_a_bad_policy_is_exit_1_and_named(tmp_path, capsys):
    bad = tmp_path / "policy.yaml"
    bad.write_text("policy: [not, a, mapping]\n")
    assert main(["policy", "--policy", str(bad)]) == 1
    assert "bad policy" in capsys.readouterr().err


def test_no_audit_store_is_exit_1(tmp_path, capsys):
    assert main(["verify", "--lake", str(tmp_path / "nothing")]) == 1
    assert "no audit store" in capsys.readouterr().err


def test_a_hold_without_scope_is_bad_usage(tmp_path, capsys):
    assert main(["hold", "place", "--lake", str(tmp_path), "--reason", "case 1", "--by", "x", "--demo"]) == 2
    assert "scope" in capsys.readouterr().err

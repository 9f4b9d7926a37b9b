"""`cdr-audit subject request|list|extend` (transforms/entry/subject_commands.py): the id alone on stdout's last
line, exit codes, keys from the environment, and no spelling of the subject's number or IMSI in the lake, on
stdout or stderr, or in the compliance report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.leakscan import identifier_variants, scan
from tests.transforms.privacy.conftest import KEY_A, KEY_B, by_hand
from transforms.audit_store import insert, reading, writing
from transforms.audit_store.tables import Run
from transforms.bundled import REPO_ROOT
from transforms.entry.cli import main
from transforms.entry.commands import EXIT_OK, EXIT_USAGE
from transforms.lake import Lake
from transforms.policy import load_policy
from transforms.report import write_report
from transforms.subjects.requests import local_today

NUMBER = "+38640123456"
SPELLINGS = ("+386 40 123 456", "0038640123456", "040 123 456", "38640123456")
IMSI = "293401234567890"
REQUEST_ID = re.compile(r"R-[0-9a-f]{12}")


def subject(lake: Lake, *args: str) -> int:
    return main(["subject", *args[:1], "--lake", str(lake.root), *args[1:]])


def request(lake, *args: str) -> int:
    return subject(lake, "request", *args)


def stored(lake: Lake) -> list[tuple]:
    with reading(lake) as con:
        return con.execute("SELECT request_id, subject_right, subject_kind, subject_tokens, received, due, status,"
                           " reference, recorded_by FROM subject_requests ORDER BY recorded_at").fetchall()


def test_the_id_is_alone_on_the_last_line_and_the_number_is_never_printed(tmp_path):
    lake = Lake.at(tmp_path / "lake")
    proc = subprocess.run(
        [sys.executable, "-m", "transforms.entry.cli", "subject", "request", "--lake", str(lake.root), "--right",
         "erasure",
         "--msisdn", SPELLINGS[0], "--received", "2026-01-31", "--reference", "letter 2026/114", "--by", "dpo"],
        capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT),
                                                            "CDR_AUDIT_DEMO_MODE": "1"})
    assert proc.returncode == EXIT_OK, proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert REQUEST_ID.fullmatch(last)
    assert "answer by 2026-02-28" in proc.stdout and "2026-04-30 at most" in proc.stdout
    [(request_id, right, kind, _, received, due, status, reference, by)] = stored(lake)
    assert (request_id, right, kind, received, due, status, reference, by) == (
        last, "erasure", "msisdn", date(2026, 1, 31), date(2026, 2, 28), "open", "letter 2026/114", "dpo")
    assert scan([], identifier_variants([NUMBER], [], [], []), proc.stdout + proc.stderr) == {}


def test_every_spelling_is_one_subject_under_every_key_held(tmp_path, monkeypatch, capsys):
    retired = tmp_path / "retired.keys"
    retired.write_text(f"{KEY_A.key_id}:{KEY_A.secret.hex()}\n")
    retired.chmod(0o600)
    monkeypatch.setenv("CDR_AUDIT_HMAC_KEY", KEY_B.secret.hex())
    monkeypatch.setenv("CDR_AUDIT_HMAC_KEY_ID", KEY_B.key_id)
    monkeypatch.setenv("CDR_AUDIT_HMAC_RETIRED_KEYS_FILE", str(retired))
    lake = Lake.at(tmp_path / "lake")
    ids = []
    for spelling in (*SPELLINGS, NUMBER):
        assert request(lake, "--right", "access", "--msisdn", spelling, "--received", "2026-03-01") == EXIT_OK
        ids.append(capsys.readouterr().out.splitlines()[-1])
    tokens = {json.dumps(json.loads(t), sort_keys=True) for _, _, _, t, *_ in stored(lake)}
    assert tokens == {json.dumps({k.key_id: by_hand(k.secret, f"msisdn:{NUMBER}") for k in (KEY_A, KEY_B)},
                                 sort_keys=True)}
    assert len(set(ids)) == 5 and all(REQUEST_ID.fullmatch(i) for i in ids)


@pytest.mark.parametrize("args, message", [
    (["--msisdn", "12ab34"], "the msisdn given is not a phone number"),
    (["--imsi", "29340123"], "the imsi given is not an IMSI"),
    (["--msisdn", "040 123 456", "--reference", "from 040 123 456"], "the reference contains a long run of digits"),
    (["--imsi", IMSI, "--received", "2099-01-01"], "after today"),
])
def test_refusals_are_bad_usage_and_never_repeat_the_subject(tmp_path, capsys, args, message):
    if "--received" not in args:
        args = [*args, "--received", "2026-03-01"]
    lake = Lake.at(tmp_path / "lake")
    assert request(lake, "--right", "objection", *args) == EXIT_USAGE
    out = capsys.readouterr()
    assert message in out.err
    assert not scan([], ["12ab34", "29340123", *SPELLINGS, *identifier_variants([NUMBER], [IMSI], [], [])],
                    out.out + out.err)
    assert not lake.audit_db.exists() or stored(lake) == []


def test_list_by_last_day_with_days_left_and_extend_within_the_first_month(tmp_path, capsys):
    lake = Lake.at(tmp_path / "lake")
    for received in ("2026-02-20", "2026-01-31", "2026-03-01"):       # last days 20 Mar, 28 Feb, 1 Apr
        assert request(lake, "--right", "access", "--imsi", IMSI, "--received", received, "--today", "2026-03-01") == 0
    ids = {r[4].isoformat(): r[0] for r in stored(lake)}
    capsys.readouterr()
    assert subject(lake, "list", "--today", "2026-03-01") == EXIT_OK
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:-1]]
    assert [(r[0], r[3], r[4]) for r in rows] == [(ids["2026-01-31"], "2026-02-28", "-1"),
                                                  (ids["2026-02-20"], "2026-03-20", "19"),
                                                  (ids["2026-03-01"], "2026-04-01", "31")]
    assert rows[0][-1] == "(overdue)"
    # The first month of the 20 Feb request runs to 20 Mar: extended then, to at most 20 May; the 31 Jan one's
    # ended on 28 Feb.
    assert subject(lake, "extend", ids["2026-02-20"], "--to", "2026-05-21", "--reason", "many zones",
                   "--today", "2026-03-01") == EXIT_USAGE
    assert "2026-05-20" in capsys.readouterr().err
    assert subject(lake, "extend", ids["2026-02-20"], "--to", "2026-05-20", "--reason", "many zones",
                   "--today", "2026-03-20") == EXIT_OK
    assert "last day to answer 2026-05-20 (first 2026-03-20)" in capsys.readouterr().out
    assert subject(lake, "extend", ids["2026-01-31"], "--to", "2026-04-30", "--reason", "late",
                   "--today", "2026-03-01") == EXIT_USAGE
    assert "ended on 2026-02-28" in capsys.readouterr().err
    assert subject(lake, "list", "--today", "2026-03-21", "--all") == EXIT_OK
    out = capsys.readouterr().out
    assert f"{ids['2026-02-20']}  access         2026-02-20  2026-05-20         60  extended" in out
    assert out.splitlines()[-1] == "3 request(s) as of 2026-03-21"


def test_nothing_of_the_subject_reaches_the_lake_or_the_report(tmp_path, capsys):
    lake = Lake.at(tmp_path / "lake")
    policy = load_policy()
    today = local_today(policy)
    # Overdue (last day about 40 days ago), due within the policy's 7 days (28 days ago: last day today to
    # 3 days on), open (received today).
    for received, value in ((today - timedelta(days=70), ["--msisdn", SPELLINGS[2]]),
                            (today - timedelta(days=28), ["--imsi", IMSI]), (today, ["--msisdn", SPELLINGS[0]])):
        assert request(lake, "--right", "erasure", *value, "--received", received.isoformat()) == EXIT_OK
    ids = [r[0] for r in stored(lake)]
    assert subject(lake, "list") == EXIT_OK
    printed = capsys.readouterr()
    at = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)
    with writing(lake) as con:        # a night recorded, so the report is written
        insert(con, [Run(run_id="r1", night=date(2026, 11, 22), trigger="cli", started_at=at, finished_at=at,
                         status="completed", policy_id="p", policy_version="1", policy_sha256="a" * 64,
                         code_version="c")])
    report = write_report(lake, policy)
    page = " ".join(report.html_path.read_text().split())
    assert "Subject requests: which are due, which are overdue?" in page
    assert "<td>erasure</td><td class=\"n\">1</td><td class=\"n\">1</td><td class=\"n\">1</td>" in page
    assert f"<td>{ids[0]}</td><td>erasure</td>" in page and f"<td>{ids[1]}</td><td>erasure</td>" in page
    assert ids[2] not in page                                   # open, not due soon: counted, not listed
    assert "subject requests (§6): 3 not answered yet: 1 overdue, 1 due within 7 day(s)" in report.text
    needles = [*identifier_variants([NUMBER], [IMSI], [], []), *SPELLINGS]
    assert scan([lake.root], needles, printed.out + printed.err + report.text) == {}

"""transforms/nightly/plan.py: what tonight does with each landing file, and the run it opens."""

from __future__ import annotations

import os

import duckdb

from tests.transforms.nightly.conftest import CSV, ROW
from transforms.lake import Lake
from transforms.nightly.plan import PlannedFile, load_plan, plan_night, override_for


def test_plan_skips_copies_and_hidden_files(landing, tmp_path, policy):
    (landing / "a.csv").write_bytes(CSV + ROW * 3)
    (landing / "b_copy.csv").write_bytes(CSV + ROW * 3)      # same bytes as a.csv
    (landing / ".c.csv.part").write_bytes(CSV)                # still being delivered
    os.mkfifo(landing / "d.pipe")                             # not a regular file: never opened
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    assert [(f.file_name, f.action, f.lines) for f in plan.files] == [
        (".c.csv.part", "ignored", 0), ("a.csv", "audit", 4), ("b_copy.csv", "duplicate_file", 4),
        ("d.pipe", "ignored", 0)]
    assert plan.files[2].duplicate_of == plan.files[1].sha256
    assert load_plan(lake, "r1") == plan                       # another process reads the same plan back
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    assert con.execute("SELECT status, files_seen, policy_sha256 FROM runs").fetchall() == [
        ("running", 4, policy.sha256)]
    con.close()


def test_bytes_audited_before_are_known(landing, tmp_path, policy):
    from transforms.nightly.close import close_night

    (landing / "a.csv").write_bytes(CSV + ROW)
    lake = Lake.at(tmp_path / "lake")
    plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    close_night(lake, policy, run_id="r1")        # a.csv recorded (as a task that died): not an audit
    again = plan_night(landing, lake, policy, night="2026-11-22", run_id="r2", trigger="test")
    assert [f.action for f in again.files] == ["audit"]          # a failed file is audited again


def test_a_file_refused_whole_is_tried_again_in_a_re_run_of_its_night_only(landing, tmp_path, policy, formats):
    """The night's re-run may bring the format the file lacked (`--format`): a refused file is not `known` to it.
    Another night knows it as before."""
    from transforms.nightly.audit_file import audit_file
    from transforms.nightly.close import close_night
    from transforms.privacy.keys import demo_keyring

    (landing / "a.csv").write_bytes(CSV + ROW)
    (landing / "odd.csv").write_bytes(b"alpha;beta\n1;2\n3;4\n")        # no format fits: refused whole
    lake = Lake.at(tmp_path / "lake")
    for run_id in ("r1", "r2"):
        plan = plan_night(landing, lake, policy, night="2026-11-22", run_id=run_id, trigger="test")
        for p in plan.to_audit:
            audit_file(p, lake, policy, formats, run_id=run_id, night="2026-11-22", keyring=demo_keyring())
        close_night(lake, policy, run_id=run_id)
        if run_id == "r2":
            assert [(f.file_name, f.action) for f in plan.files] == [("a.csv", "known"), ("odd.csv", "audit")]
    other = plan_night(landing, lake, policy, night="2026-11-23", run_id="r3", trigger="test")
    assert [(f.file_name, f.action) for f in other.files] == [("a.csv", "known"), ("odd.csv", "known")]
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    try:      # the night counts the refused file once, by its latest outcome
        assert con.execute("SELECT files, files_rejected, rows_refused FROM v_nightly_volumes"
                           " WHERE night = '2026-11-22'").fetchone() == (2, 1, 2)
    finally:
        con.close()


def test_a_forced_profile_goes_by_the_first_matching_glob():
    f = PlannedFile(path="/landing/pbx_Master.csv", file_name="pbx_Master.csv", sha256="a", bytes=1, lines=1,
                    action="audit")
    assert override_for(f, {"*.parquet": "canonical_parquet", "pbx_*.csv": "asterisk_master_21",
                           "*.csv": "canonical_csv"}) == "asterisk_master_21"
    assert override_for(f, {"*.parquet": "canonical_parquet"}) is None


# Names as a landing folder may hold them (docs/design.md §1): not UTF-8 (a Latin-1 name from a Windows share),
# a line break, a tab, a leading dash, glob characters DuckDB would expand, quotes, 250 characters.
HOSTILE = {
    b"ra\xe8un_2026.csv": "ra\\xe8un_2026.csv",
    b"a\nb.csv": "a\\nb.csv",
    b"tab\there.csv": "tab\\there.csv",
    b"-rf.csv": "-rf.csv",
    b"*.csv": "*.csv",
    b"[ab]?.csv": "[ab]?.csv",
    b"q\"'`.csv": "q\"'`.csv",
    b"n" * 246 + b".csv": "n" * 119 + "…",
}


def test_names_are_bytes_planned_json_safe_and_reopened_exactly(landing, tmp_path, policy):
    import json
    import socket
    from dataclasses import asdict

    from transforms.nightly.plan import plan_path

    for i, raw in enumerate(HOSTILE):
        with open(os.path.join(os.fsencode(landing), raw), "wb") as fh:
            fh.write(CSV + ROW * (i + 1))                          # distinct bytes: none is a copy
    (landing / "passwd.csv").symlink_to("/etc/passwd")
    os.mkfifo(landing / "feed.csv")                                 # a FIFO must never block the plan
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(landing / "s.sock"))
    (landing / ".hidden.csv").write_bytes(CSV + ROW)
    (landing / "sub").mkdir()
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    sock.close()
    by_name = {f.file_name: f for f in plan.files}
    assert {n for n, f in by_name.items() if f.action == "audit"} == set(HOSTILE.values())
    assert {n: f.reason for n, f in by_name.items() if f.action == "ignored"} == {
        ".hidden.csv": "hidden or in-flight file; not read", "passwd.csv": "not a regular file; not read",
        "feed.csv": "not a regular file; not read", "s.sock": "not a regular file; not read",
        "sub": "not a regular file; not read"}
    plan_path(lake, "r1").read_bytes().decode("utf-8")            # the plan is plain UTF-8 JSON
    assert load_plan(lake, "r1") == plan
    for raw, shown in HOSTILE.items():
        planned = by_name[shown]
        # As Airflow's XCom carries it: JSON text, no lone surrogate; the task reopens the exact bytes.
        wire = json.dumps(asdict(planned), ensure_ascii=False).encode("utf-8")
        back = PlannedFile(**json.loads(wire))
        assert back == planned and back.fs_path.name == os.fsdecode(raw)
        assert back.fs_path.read_bytes().startswith(CSV) and planned.lines == planned.fs_path.read_bytes().count(b"\n")
    assert by_name["ra\\xe8un_2026.csv"].path_hex == os.fsencode(landing / os.fsdecode(b"ra\xe8un_2026.csv")).hex()
    assert by_name["-rf.csv"].path_hex is None and by_name["-rf.csv"].path == str(landing / "-rf.csv")
    assert override_for(by_name["ra\\xe8un_2026.csv"], {"ra*un_*.csv": "canonical_csv"}) == "canonical_csv"


def test_each_landing_entry_keeps_its_own_source_files_row(landing, tmp_path, policy):
    from transforms.nightly.close import close_night

    same = CSV + ROW
    # The same bytes under names that read the same once masked or escaped: one source_files row each.
    for raw in (b"calls_+38640111111.csv", b"calls_+38640222222.csv", b"a\xe8.csv", b"a\\xe8.csv",
                b"a\xe8.csv (2)", b"b\x01.csv", b"b\\x01.csv"):
        with open(os.path.join(os.fsencode(landing), raw), "wb") as fh:
            fh.write(same)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    names = [f.file_name for f in plan.files]
    assert len(set(names)) == len(names) == 7
    assert {"calls_+<masked>.csv", "calls_+<masked>.csv (2)", "a\\xe8.csv", "a\\xe8.csv (2)"} <= set(names)
    assert not any("38640" in n for n in names)
    close_night(lake, policy, run_id="r1")
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    rows, keys = con.execute("SELECT count(*), count(DISTINCT (run_id, sha256, file_name)) FROM source_files"
                             " WHERE run_id = 'r1'").fetchone()
    con.close()
    assert rows == keys == 7


def test_nothing_landed_only_when_no_file_to_read(landing, tmp_path, policy):
    """docs/design.md §9: empty, or only entries never opened, is a night whose extracts did not arrive; an empty
    file or a file audited before is a delivery."""
    from transforms.nightly.close import close_night

    lake = Lake.at(tmp_path / "lake")
    empty = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    assert empty.nothing_landed and "the landing folder was empty" in empty.nothing_landed_warning
    close_night(lake, policy, run_id="r1")
    (landing / ".a.csv.part").write_bytes(CSV + ROW)
    os.mkfifo(landing / "d.pipe")
    in_flight = plan_night(landing, lake, policy, night="2026-11-22", run_id="r2", trigger="test")
    assert in_flight.nothing_landed and "held only 2 entries not read" in in_flight.nothing_landed_warning
    close_night(lake, policy, run_id="r2")
    (landing / "empty.csv").write_bytes(b"")
    assert plan_night(landing, lake, policy, night="2026-11-22", run_id="r3",
                      trigger="test").nothing_landed_warning is None

"""benchmarks/many_files.py: the pieces a file is cut into, and the seconds read back from the CLI's lines."""

from __future__ import annotations

from benchmarks.many_files import cut_pieces, has_header, validate_seconds


def test_pieces_repeat_the_header_only_when_the_format_has_one(night, tmp_path):
    landing, _ = night
    mediation, freeswitch = landing / "mediation_2026-11-22.csv", landing / "freeswitch_2026-11-22.csv"
    assert has_header(mediation) and not has_header(freeswitch)
    header, *lines = mediation.read_bytes().splitlines(keepends=True)
    pieces = cut_pieces(mediation, True, 3, 4)
    assert pieces == [header + b"".join(lines[i * 4:(i + 1) * 4]) for i in range(3)]
    plain = freeswitch.read_bytes().splitlines(keepends=True)
    assert cut_pieces(freeswitch, False, 2, 5) == [b"".join(plain[:5]), b"".join(plain[5:10])]
    tiny = tmp_path / "tiny.csv"
    tiny.write_bytes(b"h\n1\n2\n3\n")
    assert cut_pieces(tiny, True, 5, 2) == [b"h\n1\n2\n", b"h\n3\n"]      # fewer pieces when the file runs out


def test_validate_seconds_are_read_from_the_progress_lines(tmp_path):
    log = tmp_path / "pipeline.log"
    log.write_text(
        "[   1.0s] [1/2] a.csv (1,000 bytes) …\n"
        "[   1.1s] [1/2]   ingested 10 rows as freeswitch_cdr_csv (0.1 s)\n"
        "[   1.8s] [1/2]   validated: 10 valid, 0 failing a rule, 0 duplicate (and 0 unparseable at ingest) (0.7 s)\n"
        "[   2.9s] [2/2]   validated: 9 valid, 1 failing a rule, 0 duplicate (and 0 unparseable at ingest) (1.1 s)\n"
        "[   3.0s] aggregates: 1 day(s) inside their 3-day window (19 rows)\n")
    assert validate_seconds(log) == [0.7, 1.1]

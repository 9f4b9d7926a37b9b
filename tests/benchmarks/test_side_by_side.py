"""benchmarks.side_by_side: the per-stage table of two nights and its flat-memory verdict."""

from __future__ import annotations

import json

from benchmarks.side_by_side import main


def _result(rows: int, peak: float, stage_s: float, floor_s: float) -> dict:
    return {"rows": rows, "loadavg_start": [0.5], "loadavg_end": [0, 0.7],
            "floor": {"wall_s": floor_s, "peak_rss_mb": 500.0, "cpu_s": floor_s * 1.5},
            "pipeline": {"wall_s": 2 * stage_s, "peak_rss_mb": peak, "cpu_s": 3 * stage_s,
                         "stages": [{"stage": "ingest", "seconds": stage_s, "peak_rss_mb": peak, "cpu_s": 2.0},
                                    {"stage": "analytics", "seconds": stage_s, "peak_rss_mb": peak - 100,
                                     "cpu_s": 1.0}]}}


def _write(tmp_path, name, result):
    path = tmp_path / name
    path.write_text(json.dumps(result))
    return path


def test_flat_memory_passes_and_the_table_has_each_night_side_by_side(tmp_path, capsys):
    small = _write(tmp_path, "a.json", _result(10_000_000, 1000.0, 40.0, 20.0))
    large = _write(tmp_path, "b.json", _result(30_000_000, 1080.0, 120.0, 60.0))
    assert main([str(large), str(small)]) == 0        # sorted by rows, whatever the order given
    out = capsys.readouterr().out
    assert "| stage | 10M s | x floor | RSS MB | CPU s | 30M s |" in out
    assert "| ingest | 40.0 | 2.00 | 1,000 | 2.0 | 120.0 | 2.00 | 1,080 | 2.0 |" in out
    assert "1,000 → 1,080 MB (+8%)" in out and "memory flat" in out


def test_memory_that_follows_the_rows_fails(tmp_path, capsys):
    small = _write(tmp_path, "a.json", _result(10_000_000, 1000.0, 40.0, 20.0))
    large = _write(tmp_path, "b.json", _result(30_000_000, 2000.0, 120.0, 60.0))
    assert main([str(small), str(large)]) == 1
    assert "NOT flat: +100%" in capsys.readouterr().out


def test_a_result_without_stages_is_refused(tmp_path, capsys):
    bare = _result(10_000_000, 1000.0, 40.0, 20.0)
    bare["pipeline"]["stages"] = []
    assert main([str(_write(tmp_path, "a.json", bare))]) == 2
    assert "no per-stage figures" in capsys.readouterr().err

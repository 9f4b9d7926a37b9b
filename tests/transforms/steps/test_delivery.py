"""transforms/steps/delivery.py: compressed deliveries told by their bytes and read decompressed; landing names
kept from DuckDB behind an alias."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os

import pytest
import zstandard

from tests.transforms.nightly.conftest import CSV, ROW
from transforms.steps import delivery
from transforms.steps.delivery import compression_of, readable_copy
from transforms.steps.lines import fingerprint

CONTENT = CSV + ROW * 500
COMPRESS = {"gzip": gzip.compress, "bzip2": bz2.compress, "zstd": lambda d: zstandard.ZstdCompressor().compress(d)}


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_a_compressed_delivery_is_told_by_its_bytes_and_fingerprinted_decompressed(tmp_path, kind):
    packed = COMPRESS[kind](CONTENT)
    path = tmp_path / "calls.csv"                       # named .csv: the bytes tell, not the name
    path.write_bytes(packed)
    shape = fingerprint(path)
    assert shape.compression == kind and shape.fault is None
    assert shape.sha256 == hashlib.sha256(packed).hexdigest()        # the delivered bytes' hash
    assert (shape.lines, shape.line_endings) == (501, "lf")          # the content's lines
    copy = readable_copy(path, shape.sha256, shape.compression, tmp_path / "work")
    assert copy.read_bytes() == CONTENT and copy.name == f"delivered-{shape.sha256[:16]}"


def test_plain_text_is_not_compressed():
    for head in (CSV, b"BZh is no bzip2 header", b"BZh0", b"", b"\x1f", b"PAR1"):
        assert compression_of(head) is None
    assert compression_of(b"BZh91AY&SY") == "bzip2" and compression_of(b"\x1f\x8b\x08") == "gzip"


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_concatenated_members_are_one_content(tmp_path, kind):
    path = tmp_path / "two.gz"
    path.write_bytes(COMPRESS[kind](CSV + ROW) + COMPRESS[kind](ROW * 2))
    shape = fingerprint(path)
    assert (shape.lines, shape.fault) == (4, None)
    assert readable_copy(path, shape.sha256, kind, tmp_path / "w").read_bytes() == CSV + ROW * 3


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_a_truncated_stream_is_a_fault_after_the_lines_it_gave(tmp_path, kind):
    big = CSV + b"".join(ROW.replace(b"10,call", f"{i},call".encode()) for i in range(60_000))
    packed = COMPRESS[kind](big)
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    shape = fingerprint(path)
    assert shape.fault.startswith(f"{kind} stream truncated after ") and shape.fault.endswith(" line(s)")
    assert 0 < shape.lines < 60_001 and f"after {shape.lines:,} line(s)" in shape.fault
    assert shape.sha256 == hashlib.sha256(packed[: len(packed) // 2]).hexdigest()
    with pytest.raises(delivery.StreamFault):
        readable_copy(path, shape.sha256, kind, tmp_path / "w")


def test_a_corrupt_or_nested_stream_is_a_fault(tmp_path):
    packed = gzip.compress(CONTENT)
    (tmp_path / "bad.gz").write_bytes(packed[:20] + b"\x00" * 40 + packed[60:])
    assert fingerprint(tmp_path / "bad.gz").fault.startswith("gzip stream corrupt (")
    (tmp_path / "twice.gz").write_bytes(gzip.compress(packed))
    twice = fingerprint(tmp_path / "twice.gz")
    assert (twice.fault, twice.lines) == ("gzip stream holds a gzip stream (compressed twice); not read", 0)
    (tmp_path / "junk.csv").write_bytes(packed + b"trailing junk")
    assert fingerprint(tmp_path / "junk.csv").fault.startswith("gzip stream corrupt (BadGzipFile) after 501 line(s)")


def test_a_decompression_bomb_is_stopped_at_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(delivery, "MAX_DECOMPRESSED_FLOOR", 1 << 20)
    path = tmp_path / "bomb.csv"
    path.write_bytes(gzip.compress(b"x,y\n" * (4 << 20)))            # 16 MiB of text in ~16 KiB
    assert delivery.decompressed_limit(path.stat().st_size) == 200 * path.stat().st_size < 16 << 20
    shape = fingerprint(path)
    assert shape.fault.startswith("gzip stream decompresses to more than 200 times its size and 1 MiB")
    assert shape.fault.endswith("(decompression bomb guard); refused after " + f"{shape.lines:,} line(s)")
    assert 0 < shape.lines * 4 <= delivery.decompressed_limit(path.stat().st_size)   # stopped at the cap
    with pytest.raises(delivery.StreamFault):
        readable_copy(path, shape.sha256, "gzip", tmp_path / "w")
    assert list((tmp_path / "w").iterdir()) == []            # no half-decompressed copy left


def test_an_uncompressed_file_is_read_through_a_symlink_named_by_its_sha256(tmp_path):
    landing = tmp_path / "in"
    landing.mkdir()
    odd = landing / "*[a]?.csv"
    odd.write_bytes(CONTENT)
    alias = readable_copy(odd, "ab" * 32, None, tmp_path / "w")
    assert alias.is_symlink() and alias.name == "delivered-" + "ab" * 8
    assert os.readlink(alias) == str(odd) and alias.read_bytes() == CONTENT
    again = readable_copy(odd, "ab" * 32, None, tmp_path / "w")      # a retried task replaces its alias
    assert again == alias

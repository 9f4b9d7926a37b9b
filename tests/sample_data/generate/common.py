"""What the generator's tests share: the night they generate, file names, and readers."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date
from pathlib import Path

ROWS, SEED = 600, 11
NIGHT = date(2026, 11, 22)
T = NIGHT.isoformat()
SUITE = Path(__file__).resolve().parents[3] / "expectations" / "billing_cdr.json"
MAIN_FILES = (f"mediation_{T}.csv", f"billing_{T}.csv", f"billing_{T}.parquet", f"asterisk_Master_{T}.csv",
              f"freeswitch_{T}.csv")
DEFECT_FILES = (f"empty_{T}.csv", f"header_only_{T}.csv", f"latin1_{T}.csv", f"billing_{T}_copy.csv",
                f"freeswitch_resaved_{T}.csv", f"nul_byte_{T}.csv", f"hostile_header_{T}.csv")
PAYMENTS_FILE = f"payments_{T}.csv"
CONSENTS_FILE = f"consents_{T}.csv"
PS_FILE = f"ts32298_ps_{T}.csv"


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _records(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    text = path.read_bytes().decode(encoding)
    return list(csv.reader(io.StringIO(text, newline="")))


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0

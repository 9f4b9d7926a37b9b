"""One night being written: what the writers of every format share."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from .events import Events, draw_events
from .manifest import FileManifest
from .night import Night
from .sensitive_values import Collector
from .subscribers import Cells, Population, population_size
from .writing import Progress, write_atomically


class Generator:
    """The population, cells and night of one generated night, a random stream per (file, chunk),
    the sensitive values written and the files recorded so far; see generate_night()."""

    def __init__(self, out: Path, rows: int, seed: int, night: date, progress: bool):
        self.out, self.rows, self.seed, self.night_date = out, rows, seed, night
        self.pop = Population.build(seed, population_size(rows))
        self.cells = Cells.build(seed)
        self.night = Night(seed, night, self.pop)
        self.collect = Collector(self.pop)
        self.progress = Progress(rows, progress)
        self.files: dict[str, FileManifest] = {}
        self.tag = night.isoformat()

    def rng(self, file_id: int, chunk: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.night.day0, file_id, chunk])

    def record(self, name: str, profile: str | None, rows: int, defects: dict[str, int]) -> None:
        size = (self.out / name).stat().st_size
        self.files[name] = FileManifest(name, profile, rows, {k: v for k, v in defects.items() if v}, size)

    def sample_events(self, file_id: int, n: int, mix: np.ndarray) -> Events:
        """A few events for a file's defect rows, drawn apart from its bulk chunks."""
        return draw_events(self.rng(file_id, 1_000_000), self.night, mix, n, 0.3, 0.7)

    def write_bytes(self, name: str, data: bytes) -> None:
        write_atomically(self.out / name, data)

"""The lake's folders: one per zone, plus the run's scratch space and pending audit facts (docs/design.md §2).

Zones are folders of hive-partitioned Parquet under the lake root; what each may hold and who may read it
is in docs/design.md §2 (the modes: transforms/lake/permissions.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The zones are the policy's purposes, kept apart (docs/design.md §2): their names live with the policy.
from transforms.policy.model import DATA_ZONES, ZONE_NAMES  # noqa: F401 (the lake's names for them)


@dataclass(frozen=True)
class Lake:
    """Paths of one lake."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> "Lake":
        return cls(Path(root).resolve())

    def zone(self, name: str) -> Path:
        assert name in ZONE_NAMES, name
        return self.root / name

    @property
    def audit_db(self) -> Path:
        return self.zone("audit") / "audit.duckdb"

    @property
    def data_docs(self) -> Path:
        """The GX Data Docs site of the night's validations (a report: the reports zone)."""
        return self.zone("reports") / "gx_data_docs"

    def work_dir(self, run_id: str) -> Path:
        """Scratch space for one run; holds only canonical (allowed) columns."""
        return self.root / "_work" / safe_run_id(run_id)

    @property
    def release_snapshots(self) -> Path:
        """Where runs link the analytics parts a release is made from (`privacy.releases`), a folder per run:
        inside the analytics zone, since a link is the part itself, with the zone's access; the leading dot
        keeps it out of every reader of the zone's partitions."""
        return self.zone("analytics") / ".releasing"

    def release_snapshot_dir(self, run_id: str) -> Path:
        return self.release_snapshots / safe_run_id(run_id)

    def fragments_dir(self, run_id: str) -> Path:
        """Per-file audit facts waiting to be merged into audit.duckdb."""
        return self.zone("audit") / "_pending" / safe_run_id(run_id)

    def ensure(self) -> None:
        """Make every zone folder that is missing, owner-only (0700: never open). Runs make them with the
        policy's modes instead (`transforms.lake.permissions.prepare_lake`)."""
        if not self.root.is_dir():
            # Owner-only too, whatever the umask: a root others may list would be refused by the next run.
            self.root.mkdir(parents=True, exist_ok=True)   # exist_ok: another process may make it at once
            self.root.chmod(0o700)
        for z in ZONE_NAMES:
            folder = self.zone(z)
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                folder.chmod(0o700)


def safe_run_id(run_id: str) -> str:
    """Airflow run ids contain ':' and '+'; make them a portable folder name.

    Always one folder below its parent: a run id of "", "." or ".." (`cdr-audit run --run-id ..`) would
    otherwise name the parent itself, and the run's clean-up would remove it (the audit zone, the lake).
    """
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id)
    return name if name.strip(".") else "_" * max(len(name), 1)

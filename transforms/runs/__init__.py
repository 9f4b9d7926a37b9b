"""Who runs a night, and what a dead run leaves: the lease on (lake, night), the claim on each file's
bytes, and the recovery that clears a dead run's staged work (docs/design.md §10)."""

from transforms.runs.lease import NightBusy, held, night_subject
from transforms.runs.recovery import Recovery, recover

__all__ = ["NightBusy", "Recovery", "held", "night_subject", "recover"]

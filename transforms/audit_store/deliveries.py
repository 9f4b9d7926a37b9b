"""What did not come: a night where nothing landed (`v_last_run.nothing_landed`), and the regular sources a night
did not read (the view `v_missing_sources`). What the close logs, the run and the summary print, and the report
shows, worded once here (docs/design.md §9). Counts and formats only, never a file name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


def nothing_landed_words(night: date | str, entries: int) -> str:
    """A night whose landing folder held `entries` entries, none of them a file to read: counts only, never a name
    (an in-flight name may hold a number; docs/design.md §4)."""
    held = (f"held only {entries:,} entr{'y' if entries == 1 else 'ies'} not read (hidden, in-flight or not a"
            " regular file)" if entries else "was empty")
    return (f"nothing landed for night {night}: the landing folder {held}, so no row was audited. Check that the"
            " night's extracts were delivered, then re-run the night")


@dataclass(frozen=True)
class MissingSource:
    source: str             # the format (profile) no file of the night was read as
    last_read_on: str       # the last night a file was read as it (ISO: the summary goes to Airflow's XCom)
    nights_without: int     # audited nights since then, this one included

    def words(self) -> str:
        since = "" if self.nights_without == 1 else f", {self.nights_without} nights without it"
        return (f"no file read as {self.source} (a regular source, last read on night {self.last_read_on}{since}):"
                " check that its extract was delivered, or see the night's files for why it was not read")


def missing_sources(con, night: date | str) -> list[MissingSource]:
    """The night's missing sources, by name; `con` has the compliance views defined."""
    return [MissingSource(source, str(last), nights) for source, last, nights in con.execute(
        "SELECT source, last_read_on, nights_without FROM v_missing_sources WHERE night = ? ORDER BY source",
        [date.fromisoformat(night) if isinstance(night, str) else night]).fetchall()]

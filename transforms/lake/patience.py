"""How long a process waits for a lock or lease another one holds, and what it says meanwhile.

Every wait of the lake works the same way (docs/design.md §6): poll, say once after the first second that
it waits and for whom (a person watching a run sees why it stands still), and give up after `wait_s`
seconds with an error naming the holder. The error is the caller's; the rhythm is here.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Patience:
    """The clock of one wait: `over()` once `wait_s` has passed, `pause(say)` to poll again."""

    def __init__(self, wait_s: float, poll_s: float):
        self.wait_s, self.poll_s = wait_s, poll_s
        self.started = time.monotonic()
        self._said = False

    def waited(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return max(self.wait_s - self.waited(), 0.0)

    def over(self) -> bool:
        return self.waited() >= self.wait_s

    def pause(self, say: Callable[[], None] | None = None) -> None:
        """Call `say` the first time this wait has lasted a second, then sleep one poll (never past the end)."""
        if say is not None and not self._said and self.waited() >= 1.0:
            say()
            self._said = True
        time.sleep(min(self.poll_s, self.left()))

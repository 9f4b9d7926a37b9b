"""A wait says once that it waits, after its first second, and ends when its time is up."""

from __future__ import annotations

import time

from transforms.lake.patience import Patience


def test_a_wait_says_once_after_a_second_and_ends_on_time():
    said = []
    patience = Patience(1.3, poll_s=0.05)
    polls = 0
    while not patience.over():
        patience.pause(lambda: said.append(round(patience.waited(), 1)))
        polls += 1
    assert len(said) == 1 and 1.0 <= said[0] <= 1.2
    assert 1.3 <= patience.waited() < 1.6 and polls > 10


def test_a_wait_with_nothing_to_say_and_no_time_never_sleeps():
    patience = Patience(0.0, poll_s=5.0)
    t = time.monotonic()
    assert patience.over()
    patience.pause(None)
    assert time.monotonic() - t < 0.5

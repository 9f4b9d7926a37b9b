"""transforms/privacy/suppression.py: primary and cross-table suppression, `other` rows, and the Released type.

Expected figures are worked out by hand from the rule (k from the policy): no released cell minus the
released cells of finer tables inside it may leave rows of fewer than k subscribers — a union of people, not
a sum — and a released parent's suppressed children are released together as one `other` row.
"""

from __future__ import annotations

import dataclasses
import types
from decimal import Decimal
from pathlib import Path

import pytest

from tests.transforms.privacy.conftest import DAY, cells_of, row, run_aggregates, write_rows
from tests.transforms.privacy.differencing import attack, read_rows
from transforms.lake.connection import connect
from transforms.policy.model import ReleaseTable
from transforms.privacy.aggregates import build_cells
from transforms.privacy.suppression import (
    PRIMARY, SECONDARY, Cell, ReleaseDecision, Released, SmallCellSubscribers, suppress, table_chains,
    write_released,
)

# Two tables for the decision alone: a service total per day (P) and its hours (C); a third, finer, for chains.
P = ReleaseTable("by_service", ("service_type",), None, "§test")
C = ReleaseTable("by_hour", ("event_hour", "service_type"), "by_service", "§test")
G = ReleaseTable("by_hour_area", ("event_hour", "service_type", "area"), "by_hour", "§test")


def no_union(ids):
    raise AssertionError(f"the union of {sorted(ids)} was not needed")


def decide(k: int, cells: list[tuple], tables=(P, C), union_size=no_union) -> ReleaseDecision:
    """A decision over one day's `cells`: (id, table, subscribers, events, parent id)."""
    names = {t.name: t for t in tables}
    decision = ReleaseDecision(k, tables, [Cell(i, names[t].name, DAY, n, e, p) for i, t, n, e, p in cells],
                               union_size)
    decision.run()
    decision.verify()
    return decision


def test_chains_include_skipped_levels():
    assert table_chains((P, C, G)) == {"by_service": (("by_hour",), ("by_hour", "by_hour_area"),
                                                      ("by_hour_area",)),
                                       "by_hour": (("by_hour_area",),), "by_hour_area": ()}


@pytest.mark.parametrize("n, released", [(2, False), (3, True), (4, True)])
def test_decision_at_k_minus_one_k_and_k_plus_one(n, released):
    d = decide(3, [(1, "by_service", n, n, None), (2, "by_hour", n, n, 1)])
    assert d.released() == ({1, 2} if released else set())
    assert d.reason == ({} if released else {1: PRIMARY, 2: PRIMARY})


def test_a_lone_small_child_takes_the_smallest_released_sibling_with_it():
    # X (2) is primary; the total minus Y and Z would give X alone, so the smaller of them goes too.
    d = decide(3, [(1, "by_service", 11, 11, None),
                   (2, "by_hour", 2, 2, 1), (3, "by_hour", 5, 5, 1), (4, "by_hour", 4, 4, 1)])
    assert d.reason == {2: PRIMARY, 4: SECONDARY}
    assert d.other_groups() == {1: [2, 4]}           # X and Z together: 6 people, released as `other`


def test_the_parent_goes_when_no_sibling_can_shelter_the_small_child():
    d = decide(3, [(1, "by_service", 4, 4, None), (2, "by_hour", 2, 2, 1), (3, "by_hour", 3, 3, 1)])
    assert d.reason == {2: PRIMARY, 3: SECONDARY}    # Y suppressed: X + Y hide 4 people under the total
    d = decide(3, [(1, "by_service", 4, 5, None), (2, "by_hour", 2, 2, 1), (3, "by_hour", 2, 3, 1)],
               union_size=lambda ids: 2)              # both small, and the same 2 people: the total goes too
    assert d.reason == {1: SECONDARY, 2: PRIMARY, 3: PRIMARY} and d.other_groups() == {}


def test_decision_asks_for_the_union_of_people_not_the_sum():
    # P and Q hold 2 subscribers each, 4 summed, but they are the same 2 people: not k.
    asked = []

    def union_size(ids):
        asked.append(set(ids))
        return 2
    cells = [(1, "by_service", 13, 13, None), (2, "by_hour", 2, 2, 1), (3, "by_hour", 2, 2, 1),
             (4, "by_hour", 5, 5, 1), (5, "by_hour", 6, 6, 1)]
    d = decide(3, cells, union_size=union_size)
    assert asked == [{2, 3}]
    assert d.reason == {2: PRIMARY, 3: PRIMARY, 4: SECONDARY}
    # Had they been 4 different people, the two small cells would have hidden each other.
    d = decide(3, cells, union_size=lambda ids: 4)
    assert d.reason == {2: PRIMARY, 3: PRIMARY} and d.other_groups() == {1: [2, 3]}


def test_a_chain_that_skips_a_level_is_checked_too():
    # Total T (by_service) > hour H1 (released, 6) and H2 (released, 5) > areas. Under H1 one small area cell
    # (2) sits beside a large one: H1 minus its released area cells would give it, so the smallest released
    # area cell of H1 goes with it. T minus the released area cells alone (skipping the hours) leaves the
    # same two cells: k or more.
    cells = [(1, "by_service", 11, 11, None), (2, "by_hour", 6, 6, 1), (3, "by_hour", 5, 5, 1),
             (4, "by_hour_area", 2, 2, 2), (5, "by_hour_area", 4, 4, 2), (6, "by_hour_area", 5, 5, 3)]
    d = decide(3, cells, tables=(P, C, G), union_size=lambda ids: 6)
    assert d.reason == {4: PRIMARY, 5: SECONDARY}
    assert d.other_groups() == {2: [4, 5]}


def test_verify_refuses_a_decision_that_reveals_a_cell():
    d = decide(3, [(1, "by_service", 11, 11, None),
                   (2, "by_hour", 2, 2, 1), (3, "by_hour", 5, 5, 1), (4, "by_hour", 4, 4, 1)])
    del d.reason[4]                        # undo the secondary suppression: total − Y − Z = X
    with pytest.raises(AssertionError, match="reveals fewer than k"):
        d.verify()
    d.reason[4] = SECONDARY
    del d.reason[2]                        # release the 2-subscriber cell itself
    with pytest.raises(AssertionError, match="fewer than k"):
        d.verify()


# --- on rows, through the database ------------------------------------------------------------------------

@pytest.mark.parametrize("n, released", [(2, False), (3, True), (4, True)])
def test_cell_released_only_from_k_subscribers(tmp_path, policy_k3, n, released):
    rows = [row(i, duration=60 * (i + 1), amount="0.2500") for i in range(n)]
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    assert result.k == 3 and all(t.cells == 1 for t in result.tables)
    for table in (t.name for t in policy_k3.release_tables):
        if released:
            # n subscribers, n calls of 1, 2, … n minutes, 0.25 each
            minutes = Decimal(n * (n + 1) // 2).quantize(Decimal("0.01"))
            expected = {"subscribers": n, "events": n, "minutes": minutes, "data_volume_bytes": 0,
                        "revenue": Decimal("0.25") * n}
            assert [{m: c[m] for m in expected} for c in cells_of(out, DAY, table)] == [expected]
        else:
            assert out[DAY][table] == []
    assert [(t.cells_released, t.cells_suppressed_primary, t.events_released) for t in result.tables] == (
        [(1, 0, n)] * 5 if released else [(0, 1, 0)] * 5)
    assert all(t.cells_suppressed_secondary == 0 for t in result.tables)


def test_k_below_two_is_refused(tmp_path, policy):
    src = write_rows(tmp_path / "analytics.parquet", [row(1)])
    con = connect(tmp_path / "tmp")
    try:
        build_cells(con, str(src), policy)
        with pytest.raises(ValueError, match="at least 2"):
            suppress(con, dataclasses.replace(policy, k_anonymity=1), tmp_path / "stage")
    finally:
        con.close()


def test_one_small_hour_under_its_area_day_takes_a_second_with_it_and_both_go_to_other(tmp_path, policy_k3):
    rows = [row(s, hour=0) for s in ("a", "b")]                      # X: 2 subscribers  -> primary
    rows += [row(s, hour=1) for s in "cdefg"]                        # Y: 5
    rows += [row(s, hour=2) for s in "hijk"]                         # Z: 4 -> smallest released: secondary
    rows += [row(s, hour=0, service="sms", cc=None) for s in "lmnopq"]   # another service, 6
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    assert sorted((c["service_type"], c["event_hour"].hour, c["subscribers"])
                  for c in cells_of(out, DAY, "hour_area_service")) == [("call", 1, 5), ("sms", 0, 6)]
    # The call × LA1 day (11 people, 11 events) minus Y (5) leaves X + Z: 6 events of 6 people, as `other`.
    assert [(c["service_type"], c["area"], c["event_hour"], c["subscribers"], c["events"])
            for c in cells_of(out, DAY, "hour_area_service", other=True)] == [("call", "LA1", None, 6, 6)]
    assert {c["service_type"]: (c["subscribers"], c["events"]) for c in cells_of(out, DAY, "day_service")} == {
        "call": (11, 11), "sms": (6, 6)}
    hourly = next(t for t in result.tables if t.table == "hour_area_service")
    assert (hourly.cells_suppressed_primary, hourly.cells_suppressed_secondary, hourly.other_cells_released) == (
        1, 1, 1)
    assert (hourly.events, hourly.events_released) == (17, 11)
    assert attack(read_rows(str(tmp_path / "analytics.parquet")), out, policy_k3, 3) == []


def test_nothing_of_a_suppressed_parent_is_released_not_even_other(tmp_path, policy_k3):
    # mms: 2 people in one area-day. Its service total holds the same 2: primary everywhere, and the sms
    # area-days hide nothing, so nothing of mms is released, `other` included.
    rows = [row(s, service="mms") for s in "ab"]
    rows += [row(s, hour=1, service="sms", cc=None, area="LA1") for s in "cdef"]
    rows += [row(s, hour=1, service="sms", cc=None, area="LA2") for s in "ghijkl"]
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    assert [c["service_type"] for c in cells_of(out, DAY, "day_service")] == ["sms"]
    assert cells_of(out, DAY, "day_area_service", other=True) == []
    assert sorted(c["area"] for c in cells_of(out, DAY, "day_area_service")) == ["LA1", "LA2"]
    assert attack(read_rows(str(tmp_path / "analytics.parquet")), out, policy_k3, 3) == []


def test_sums_alone_would_reveal_rows_without_a_subscriber(tmp_path, policy_k3):
    # Rows with no token (no person to count) still carry events and minutes: an area-day of 3 people plus one
    # token-less hour is released, the token-less hour is not, and the area-day minus its released hours would
    # give that hour's events and minutes. The remainder has 0 subscribers and 2 events: not nothing, so the
    # check must treat it as under k and suppress a second hour.
    rows = [row(s, hour=0) for s in "abc"] + [row(s, hour=1) for s in "defg"]
    rows += [(None, *row("x", hour=2, duration=600)[1:]) for _ in range(2)]
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    hours = sorted(c["event_hour"].hour for c in cells_of(out, DAY, "hour_area_service"))
    assert hours == [1]                                     # hour 0 (3 people) went with the token-less hour 2
    assert [(c["subscribers"], c["events"]) for c in cells_of(out, DAY, "hour_area_service", other=True)] == [
        (3, 5)]
    assert attack(read_rows(str(tmp_path / "analytics.parquet")), out, policy_k3, 3) == []


def test_union_of_small_cells_is_counted_per_key(tmp_path, policy):
    # Cells P, Q, R all under k=4: P and Q hold a and b, R holds c and d. A union counts people once,
    # and tokens of two keys (a rotation) are counted per key, the larger count kept.
    rows = [row(s, hour=h) for h, people in ((0, "ab"), (1, "ab"), (2, "cd")) for s in people]
    rows += [row(s, hour=3) for s in ("a@k2", "b@k2", "e@k2")]              # T: the same a, b and e, new key
    src = write_rows(tmp_path / "analytics.parquet", rows, second_key=("a@k2", "b@k2", "e@k2"))
    con = connect(tmp_path / "tmp")
    try:
        build_cells(con, str(src), policy)
        hourly = [i for i, t in enumerate(policy.release_tables) if t.name == "hour_area_service"][0]
        p, q, r, t = (i for (i,) in con.execute(f"SELECT cell_id FROM cells WHERE table_no = {hourly}"
                                                " ORDER BY event_hour").fetchall())
        union = SmallCellSubscribers(con, 4)
        assert union({p, q}) == 2
        assert union({p, q, r}) == 4
        assert union({p, t}) == 3        # 2 under k1, 3 under k2: never 5
    finally:
        con.close()


# --- the Released type and the writer ----------------------------------------------------------------

def _stage(tmp_path, rows, policy) -> Released:
    src = write_rows(tmp_path / "analytics.parquet", rows)
    con = connect(tmp_path / "tmp")
    try:
        build_cells(con, str(src), policy)
        return suppress(con, policy, tmp_path / "stage")
    finally:
        con.close()


def test_released_is_made_only_by_suppression(tmp_path, policy_k3):
    with pytest.raises(TypeError):
        Released(k=3, partitions=(), tables=())
    released = _stage(tmp_path, [row(i) for i in range(4)], policy_k3)
    with pytest.raises(TypeError):
        dataclasses.replace(released, k=1)
    fake = types.SimpleNamespace(**{f.name: getattr(released, f.name) for f in dataclasses.fields(released)})
    with pytest.raises(TypeError):
        write_released(fake, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    written = write_released(released, tmp_path / "out")
    names = [f"{t.name}.parquet" for t in policy_k3.release_tables]
    assert [Path(f).name for f in written] == names
    assert all((tmp_path / "out" / f"event_date={DAY}" / n).exists() for n in names)
    assert all(Path(f).read_bytes() == Path(s).read_bytes() for f, s in zip(written, released.partitions[0].files))


def test_writer_refuses_staged_files_changed_after_suppression(tmp_path, policy_k3):
    released = _stage(tmp_path, [row(i) for i in range(4)], policy_k3)
    write_rows(Path(released.partitions[0].files[-1]), [row(1)])     # a table that never went through the check
    with pytest.raises(ValueError):
        write_released(released, tmp_path / "out")
    assert not list((tmp_path / "out").glob("event_date=*"))

"""A forwarded leg of the subject's SIM, told one way by the finder, the erasure and the nightly restriction
(policy §6.1, §6.3, §6.4; docs/design.md §12).

A mediation export writes the leg of S's SIM forwarding C4's call to O as S's number calling O, direction
`forwarded`, S's IMSI, IMEI and cell, S as the redirecting number. By the served-party rule a forwarded record is
the called party's (`steps.billing.served_party_sql`): O's. So the row is O's communication record, in which S is
the other party three times (calling number, redirecting number, IMSI): S finds it as `other_party` (their own
cells kept), S's erasure keeps it with those cells blanked, and S's restriction lets it land with those cells NULL
and leaves it out of nothing but the roaming months, whose rows are the IMSI's (S's SIM's presence).
"""

from __future__ import annotations

import duckdb
import pytest

from tests.transforms.privacy.conftest import RING_A, ROTATED, SECRET_A, SECRET_B, stored, write_billing
from tests.transforms.subjects.conftest import (O_IMSI, O_NUMBER, S_DAY1, S_IMEI, S_IMSI, S_INVOICE_ROWS,
                                                S_NATIONAL, S_NUMBER, SERVED, X_NUMBER, cdr)
from tests.transforms.subjects import test_fulfil
from tests.transforms.subjects.test_fulfil import _restricted, answer, ask
from tests.transforms.subjects.test_find import roles, search
from transforms.privacy.analytics import build_analytics
from transforms.privacy.restricted import ANALYTICS
from transforms.steps.billing import restricted_filter
from transforms.subjects.subject import Subject

FORWARDED_AT, S_OWN_AT = ("2026-06-30 15:00:00", 64), ("2026-06-30 15:30:00", 65)
LEG = cdr(S_NUMBER, O_NUMBER, "forwarded", imsi=S_IMSI, imei=S_IMEI, cell="CELLS001", redirection=S_NUMBER,
          start=FORWARDED_AT[0], duration=FORWARDED_AT[1])
S_CALLS_X = cdr(S_NATIONAL, X_NUMBER, "outgoing", imsi=S_IMSI, imei=S_IMEI, cell="CELLS001", start=S_OWN_AT[0],
                duration=S_OWN_AT[1])
SHA = "f" * 64
rights_lake = test_fulfil.rights_lake       # the fixture: the subject lake with consents and profiles


def tokens_of(value: str, kind: str = "msisdn") -> set[bytes]:
    return {stored(s, f"{kind}:{value}") for s in (SECRET_A, SECRET_B)}


@pytest.fixture()
def with_leg(subject_lake, policy, tmp_path):
    """The subject lake plus a June file of the forwarded leg, its analytics made with key A like June's."""
    june = write_billing(subject_lake, policy, S_DAY1, [LEG], SHA)
    build_analytics([june], subject_lake, policy, RING_A, tmp_path / "wl", source_sha256=SHA)
    return subject_lake


def _row(rows: list[dict], at: tuple[str, int], time_column: str = "start_time") -> dict:
    (row,) = [r for r in rows if (r[time_column].strftime("%Y-%m-%d %H:%M:%S"), r["duration_s"]) == at]
    return row


@pytest.mark.parametrize("value, kind", [(S_NUMBER, "msisdn"), (S_IMSI, "imsi")])
def test_the_finder_gives_the_leg_as_the_other_partys_in_billing_and_analytics(with_leg, policy, value, kind):
    found = search(with_leg, policy, ROTATED, Subject.of(value, kind, ROTATED, policy))
    billing, analytics = found["billing"][1], found["analytics"][1]
    leg = _row(billing, FORWARDED_AT)
    assert leg["subject_role"] == "other_party"
    # S's own cells of the row stay, their SIM's IMSI too however S asked (by number, it is learnt from the rows
    # served to S's number before billing is read); O's number (the served party's) and the record's lineage are
    # blanked.
    assert (leg["origin_number"], leg["redirection_number"]) == (S_NUMBER, S_NUMBER)
    assert leg["imsi"] == S_IMSI
    # The leg's SIM is S's: its device and place are S's own data too.
    assert (leg["imei"], leg["cell_id"], leg["location_area"]) == (S_IMEI, "CELLS001", "LA7")
    assert leg["destination_number"] is None and leg["record_id"] is None
    twin = _row(analytics, (FORWARDED_AT[0][:13] + ":00:00", FORWARDED_AT[1]), "event_hour")
    assert twin["subject_role"] == "other_party" and twin["destination_number"] is None
    assert (twin["imsi"], twin["imei_tac"]) == (stored(SECRET_A, f"imsi:{S_IMSI}"), S_IMEI[:8])
    # S's own rows are the same as without the leg: O's number is never taken for S's (it would bring O's calls,
    # O's invoice and O's analytics rows into S's copy — and into what an erasure of S takes).
    served = {(r["start_time"].strftime("%Y-%m-%d %H:%M:%S"), r["duration_s"]) for r in billing
              if r["subject_role"] == "served"}
    assert served == SERVED
    assert sum(r["subject_role"] == "served" for r in analytics) == len(SERVED)
    assert found["invoices"][0].rows == S_INVOICE_ROWS


def test_the_forwarded_to_party_is_not_given_the_forwarding_sims_rows(with_leg, policy):
    """O, asked for by number, is the served party of the leg, which holds S's IMSI: that IMSI is not O's SIM, so
    none of S's own rows reach O's copy — not S's analytics rows, S's roaming month or S's quarantined CDR."""
    found = search(with_leg, policy, ROTATED, Subject.of(O_NUMBER, "msisdn", ROTATED, policy))
    # O's rows by the conftest's table: O served in 6 (O calls X), 8 (X calls O) and the leg; the other party in
    # 1 (S calls O) and 3 (S's leg of O's call). S's data session (7) and S's rows with C1, C2, C3 are not O's.
    june, july = "2026-06-30", "2026-07-02"
    expected = {(f"{june} 14:00:00", 60, "served"), (f"{july} 09:00:00", 60, "served"),
                (f"{june} 15:00:00", 64, "served"), (f"{june} 10:00:00", 60, "other_party"),
                (f"{june} 11:30:00", 91, "other_party")}
    assert roles(found["billing"][1]) == expected
    assert roles(found["analytics"][1], "event_hour") == {(t[:14] + "00:00", d, r) for t, d, r in expected}
    # The leg is O's record, but its SIM, device and place are S's: not in O's copy. O's own rows keep O's.
    leg = _row(found["billing"][1], FORWARDED_AT)
    assert (leg["imsi"], leg["imei"], leg["cell_id"], leg["location_area"]) == (None, None, None, None)
    assert leg["destination_number"] == O_NUMBER and leg["charged_amount"] is not None
    twin = _row(found["analytics"][1], (FORWARDED_AT[0][:13] + ":00:00", FORWARDED_AT[1]), "event_hour")
    assert (twin["imsi"], twin["imei_tac"], twin["area"]) == (None, None, None)
    o_calls_x = _row(found["billing"][1], ("2026-06-30 14:00:00", 60))
    assert (o_calls_x["imsi"], o_calls_x["cell_id"]) == (O_IMSI, "CELLAB12")
    # Roaming knows a subscriber by the IMSI's token only: O's month, never S's.
    assert [r["subscriber_token"] for r in found["roaming"][1]] == [stored(SECRET_A, f"imsi:{O_IMSI}")]
    assert {r["record_id"] for r in found["quarantine"][1]} == {"q3"}


def test_the_forwarded_to_partys_erasure_leaves_the_forwarding_sims_rows(with_leg, rights_lake, policy, tmp_path):
    """O's erasure reaches O's rows only: S's own analytics rows (their IMSI's, 1, 3 and 7 of the conftest's table)
    and S's roaming month stay, though the leg served to O holds S's IMSI."""
    s_token = stored(SECRET_A, f"imsi:{S_IMSI}")
    analytics = [str(p) for p in rights_lake.zone("analytics").rglob("*.parquet")]

    def s_rows() -> set[int]:
        files = [str(p) for p in rights_lake.zone("analytics").rglob("*.parquet")]
        return {d for (d,) in duckdb.execute("SELECT duration_s FROM read_parquet(?, union_by_name = true)"
                                              " WHERE imsi IN (?, ?)", [files, s_token,
                                                                         stored(SECRET_B, f"imsi:{S_IMSI}")]).fetchall()}

    assert analytics and s_rows() == {60, 91, 300, FORWARDED_AT[1]}
    answer(rights_lake, policy, ask(rights_lake, policy, "erasure", O_NUMBER), tmp_path / "out")
    assert {60, 91, 300} <= s_rows()
    months = [str(p) for p in rights_lake.zone("roaming").rglob("month=*/*.parquet")]
    assert duckdb.execute("SELECT count(*) FROM read_parquet(?, union_by_name = true) WHERE subscriber_token = ?",
                          [months, s_token]).fetchone()[0] == 1


def test_an_erasure_keeps_the_leg_as_os_with_s_blanked(with_leg, rights_lake, policy, tmp_path):
    rid = ask(rights_lake, policy, "erasure")
    result = answer(rights_lake, policy, rid, tmp_path / "out")
    files = [str(p) for p in rights_lake.zone("analytics").rglob("*.parquet")]
    (leg,) = duckdb.execute("SELECT origin_number, destination_number, redirection_number, imsi FROM"
                            " read_parquet(?, union_by_name = true) WHERE duration_s = ?",
                            [files, FORWARDED_AT[1]]).fetchall()
    assert leg == (None, stored(SECRET_A, f"msisdn:{O_NUMBER}"), None, None)
    # The leg's three cells among those blanked: rows 2, 4 and 5 of conftest name S once each.
    assert (result.actions["analytics"]["rows_blanked"], result.actions["analytics"]["cells_blanked"]) == (4, 6)


def test_a_restricted_night_lands_the_leg_as_os_without_s(rights_lake, policy, tmp_path):
    from transforms.roaming.months import build_months

    rid = ask(rights_lake, policy, "restriction")
    answer(rights_lake, policy, rid, tmp_path / "out")
    restricted = _restricted(rights_lake)
    assert {t.kind for t in restricted.tokens} == {"msisdn"}      # asked by number: S's IMSI is found tonight
    tonight = write_billing(rights_lake, policy, S_DAY1, [LEG, S_CALLS_X], SHA)
    made = build_analytics([tonight], rights_lake, policy, ROTATED, tmp_path / "wa", source_sha256=SHA,
                           skip=restricted_filter(restricted, ANALYTICS))
    # S's call to X is S's own: left out. The leg is O's: it lands, S's number twice and S's IMSI written NULL.
    assert (made.rows, made.rows_restricted, made.cells_blanked) == (1, 1, 3)
    (part,) = made.zone.files
    (leg,) = duckdb.execute("SELECT origin_number, destination_number, redirection_number, imsi FROM read_parquet(?)",
                            [str(rights_lake.root / part)]).fetchall()
    assert leg == (None, stored(SECRET_B, f"msisdn:{O_NUMBER}"), None, None)
    assert not any(t in (rights_lake.root / part).read_bytes() for t in tokens_of(S_NUMBER) | tokens_of(S_IMSI, "imsi"))
    # Roaming's rows are the IMSI's: the leg is the presence of S's SIM, left out with S's June rows 1 and 3 and
    # S's call to X.
    months = build_months(rights_lake, policy, ROTATED, ["2026-06"], tmp_path / "wr", restricted)
    assert months.rows_restricted == 4


def test_a_restricted_forwarded_to_party_keeps_the_sims_roaming_and_loses_their_own_row(
        rights_lake, policy, tmp_path):
    # O restricted (by number): the leg is O's row (left out of analytics), but in roaming it is S's SIM's presence.
    from transforms.roaming.months import build_months

    rid = ask(rights_lake, policy, "restriction", value=O_NUMBER)
    answer(rights_lake, policy, rid, tmp_path / "out")
    tonight = write_billing(rights_lake, policy, S_DAY1, [LEG], SHA)
    made = build_analytics([tonight], rights_lake, policy, ROTATED, tmp_path / "wa", source_sha256=SHA,
                           skip=restricted_filter(_restricted(rights_lake), ANALYTICS))
    assert (made.rows, made.rows_restricted) == (0, 1)
    months = build_months(rights_lake, policy, ROTATED, ["2026-06"], tmp_path / "wr", _restricted(rights_lake))
    assert months.rows_restricted == 1           # O's own June row 6 (O's IMSI); the leg stays S's SIM's

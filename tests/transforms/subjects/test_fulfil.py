"""transforms/subjects/fulfil.py: answering a recorded request on the hand-made lake (conftest), with S's consents
and marketing profiles added. What each zone must do, and the dates, are worked out here from the law and the
policy's catalog (never from the code's output):

* billing (ZEKom-2, OZ: until paid, at most the claim's limitation): S's June rows are in period 2026-06, whose
  invoice INV-2 is open with claim type consumer_services (P1Y): kept through 2027-06-30, due 2027-07-01; the July
  rows' period has no invoice yet, so the category's P1Y after 2026-07-31: due 2027-08-01. The zone's data go on
  the later of the two.
* invoices (ZDDV-1): 10 years after the end of the invoice year 2026: due 2037-01-01.
* roaming (Reg. 2022/612): 6 months after the end of June 2026 (30 June + 6 months = 30 December), due the next
  day, 2026-12-31.
* analytics, marketing, quarantine: no legal obligation keeps them: erased on the day of the answer.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest

from tests.leakscan import scan
from tests.transforms.privacy.conftest import ROTATED, SECRET_A, SECRET_B, stored
from tests.transforms.subjects.conftest import O_NUMBER, S_IMSI, S_NUMBER, SERVED
from transforms.audit_store import reading, verify_chain
from transforms.consents.register import define_standing
from transforms.lake.commit import sha256_file
from transforms.lake.partitions import index_path
from transforms.marketing.profiles import build_profiles
from transforms.retention import holds
from transforms.steps.consents import CONSENT_COLUMNS, load_consents
from transforms.subjects import requests
from transforms.subjects.export import SUMMARY
from transforms.subjects.fulfil import FulfilError, fulfil, lift
from transforms.subjects.find import ZONES

RECEIVED, TODAY = date(2026, 7, 8), date(2026, 7, 10)


def now_day() -> date:
    """The day the withdrawals an answer records stand from (the register's `recorded_at`: when it is given),
    taken after the answer: a run that crosses midnight (UTC) must not look the day before."""
    return datetime.now(timezone.utc).date()


DIRECT_MARKETING = ("marketing_contact", "marketing_profiling", "partner_offers")


@pytest.fixture()
def rights_lake(subject_lake, policy, tmp_path):
    """The subject lake, plus S's and O's consents (June 2026) and the marketing profiles they allow."""
    path = tmp_path / "consents_2026-06-02.csv"
    path.write_text(",".join(CONSENT_COLUMNS) + "\n" + "".join(
        f"{n},{p},granted,2026-06-01T10:00:00Z,self_care_app\n"
        for n in (S_NUMBER, O_NUMBER) for p in ("marketing_profiling", "marketing_contact", "value_added_services")))
    load_consents(path, policy, subject_lake, tmp_path / "wc", night="2026-06-02", run_id="run-c")
    build_profiles(subject_lake, policy, ROTATED, ["2026-06-30", "2026-07-02"], date(2026, 7, 3), tmp_path / "wm")
    return subject_lake


def ask(lake, policy, right: str, value: str = S_NUMBER, kind: str = "msisdn") -> str:
    return requests.record(lake, policy, ROTATED, right=right, kind=kind, value=value, received=RECEIVED,
                           today=TODAY).request_id


def answer(lake, policy, rid, out, **kw):
    return fulfil(lake, policy, ROTATED, rid, out, today=TODAY, answered_by="dpo", **kw)


def rows_of(lake, zone: str) -> int:
    files = [str(p) for p in lake.zone(zone).rglob("*.parquet")]
    return duckdb.execute("SELECT count(*) FROM read_parquet(?, union_by_name = true)", [files]).fetchone()[0] \
        if files else 0


def zone_hashes(lake) -> dict[str, str]:
    return {str(p.relative_to(lake.root)): sha256_file(p) for z in ZONES if lake.zone(z).exists()
            for p in sorted(lake.zone(z).rglob("*.parquet"))}


def stored_request(lake, rid):
    with reading(lake) as con:
        return con.execute("SELECT status, zone_rows, zone_actions, restricted_at, lifted_at, answered_by"
                           " FROM subject_requests WHERE request_id = ?", [rid]).fetchone()


def test_erasure_erases_what_the_law_lets_go_and_restricts_the_rest_until_the_catalogs_date(rights_lake, policy,
                                                                                          tmp_path):
    before = {z: rows_of(rights_lake, z) for z in ("analytics", "marketing", "quarantine", "billing", "invoices",
                                                     "roaming")}
    rid = ask(rights_lake, policy, "erasure")
    result = answer(rights_lake, policy, rid, tmp_path / "out")
    a = result.actions
    assert {z: a[z]["action"] for z in a} == {
        "billing": "restricted", "invoices": "restricted", "roaming": "restricted", "analytics": "erased",
        "marketing": "erased", "quarantine": "erased", "consents": "erased", "aggregates": "anonymous"}
    assert a["billing"]["goes_on"] == "2027-08-01"
    assert a["invoices"]["goes_on"] == "2037-01-01"
    assert a["roaming"]["goes_on"] == "2026-12-31"
    for z in ("analytics", "marketing", "quarantine", "consents"):
        assert a[z]["goes_on"] == TODAY.isoformat(), z
    assert "§6.3" in a["analytics"]["clause"] and "ZDDV-1" in a["invoices"]["clause"]
    # Counts before / after: only S's own rows went (S's three served analytics rows; S's marketing day; the
    # quarantined CDR of S and S's payments row); billing, invoices and roaming keep every row.
    found = result.counts
    assert found["analytics"] == 6 and found["marketing"] == 1     # profiles count usage: S's July data session
    assert rows_of(rights_lake, "analytics") == before["analytics"] - len(SERVED)
    assert rows_of(rights_lake, "marketing") == before["marketing"] - 1
    assert rows_of(rights_lake, "quarantine") == before["quarantine"] - 2
    for z in ("billing", "invoices", "roaming"):
        assert rows_of(rights_lake, z) == before[z], z
    assert a["analytics"]["rows_erased"] == len(SERVED)
    # C1's, C2's and C3's rows stay (rows 2, 4, 5: S their called, calling, redirected-to number), S blanked once in
    # each; O's profiles never named S (O called nobody who consented), so nothing is blanked in marketing.
    assert (a["analytics"]["rows_blanked"], a["analytics"]["cells_blanked"]) == (3, 3)
    assert "rows_blanked" not in a["marketing"]
    # The byte proof: every rewritten file re-read, none of the erased identifiers left.
    assert result.proofs and all(p.ok and p.identifiers_checked for p in result.proofs if p.outcome == "rewritten")
    summary = json.loads((tmp_path / "out" / SUMMARY).read_text())
    assert summary["request_id"] == rid and summary["right"] == "erasure"
    assert summary["zones"] == found and summary["actions"] == a
    status, zone_rows, zone_actions, restricted_at, _, by = stored_request(rights_lake, rid)
    assert (status, by) == ("fulfilled", "dpo") and restricted_at is not None
    assert json.loads(zone_rows) == found and json.loads(zone_actions) == a


def test_the_subjects_tokens_and_number_are_gone_from_every_rewritten_file(rights_lake, policy, tmp_path):
    rid = ask(rights_lake, policy, "erasure")
    answer(rights_lake, policy, rid, tmp_path / "out")
    # S's IMSI token under key A (June analytics, roaming) and B (July analytics): no analytics row has it.
    for secret in (SECRET_A, SECRET_B):
        tok = stored(secret, f"imsi:{S_IMSI}")
        files = [str(p) for p in rights_lake.zone("analytics").rglob("*.parquet")]
        assert not duckdb.execute("SELECT count(*) FROM read_parquet(?) WHERE imsi = ?", [files, tok]).fetchone()[0]
        for p in rights_lake.zone("analytics").rglob("*.parquet"):
            assert tok not in p.read_bytes()
            # the rewritten part keeps its subject index, without the token only the erased rows held
            index = [t for (t,) in duckdb.execute("SELECT token FROM read_parquet(?)", [str(index_path(p))]).fetchall()]
            assert index and tok not in index
    # Nor any of S's number tokens, in any column, under either key: the callers' rows name S no more (§6.3).
    s_tokens = [stored(secret, f"msisdn:{S_NUMBER}") for secret in (SECRET_A, SECRET_B)]
    for p in rights_lake.zone("analytics").rglob("*.parquet"):
        assert not any(t in p.read_bytes() for t in s_tokens), p
        # the blanked parts keep their index too, without the number tokens only the blanked cells held
        assert not any(t in index_path(p).read_bytes() for t in s_tokens), p
    callers = duckdb.execute("SELECT count(*) FROM read_parquet(?) WHERE duration_s IN (61, 62, 63)",
                             [[str(p) for p in rights_lake.zone("analytics").rglob("*.parquet")]]).fetchone()[0]
    assert callers == 3
    # The quarantine keeps C1's record (S only the other party there) and O's; S's own rows are gone.
    q = [str(p) for p in rights_lake.zone("quarantine").rglob("*.parquet")]
    ids = {r for (r,) in duckdb.execute("SELECT record_id FROM read_parquet(?, union_by_name = true)",
                                        [q]).fetchall()}
    assert "q1" not in ids and {"q2", "q3"} <= ids
    for p in rights_lake.zone("quarantine").rglob("*.parquet"):
        assert S_IMSI.encode() not in p.read_bytes()


def test_erasure_keeps_only_a_withdrawal_of_every_purpose_in_the_register(rights_lake, policy, tmp_path):
    rid = ask(rights_lake, policy, "erasure")
    answer(rights_lake, policy, rid, tmp_path / "out")
    con = duckdb.connect()
    define_standing(con, rights_lake, now_day())
    standing = dict(con.execute("SELECT purpose, granted FROM consent_standing WHERE subscriber_number = ?",
                                [S_NUMBER]).fetchall())
    assert standing == dict.fromkeys(policy.consent.purpose_names, False)
    files = [str(p) for p in rights_lake.zone("consents").rglob("*.parquet")]
    s_events = con.execute("SELECT status, count(*) FROM read_parquet(?) WHERE subscriber_number = ? GROUP BY ALL",
                           [files, S_NUMBER]).fetchall()
    assert s_events == [("withdrawn", len(policy.consent.purpose_names))]     # the grants are erased
    o_events = con.execute("SELECT count(*) FROM read_parquet(?) WHERE subscriber_number = ?",
                           [files, O_NUMBER]).fetchone()[0]
    assert o_events == 3


def test_a_legal_hold_on_the_subject_turns_erasure_into_restriction(rights_lake, policy, tmp_path):
    hold = holds.place(rights_lake, policy, ROTATED, reason="court order 12/2026", placed_by="legal",
                       subscriber=S_NUMBER,
                       dataset="analytics")
    rid = ask(rights_lake, policy, "erasure")
    before = rows_of(rights_lake, "analytics")
    result = answer(rights_lake, policy, rid, tmp_path / "out")
    a = result.actions["analytics"]
    assert a["action"] == "restricted" and a["hold_ids"] == [hold.hold_id] and a["rows_erased"] == 0
    assert rows_of(rights_lake, "analytics") == before
    # The hold keeps S's analytics data as it is, S's place in the callers' rows included: nothing blanked.
    assert "rows_blanked" not in a and not [p for p in result.proofs if p.dataset == "analytics"]
    assert result.actions["marketing"]["action"] == "erased"       # the hold covers analytics only


def test_a_subject_under_a_rotated_key_is_erased_under_both(rights_lake, policy, tmp_path):
    rid = ask(rights_lake, policy, "erasure", value=S_IMSI, kind="imsi")
    result = answer(rights_lake, policy, rid, tmp_path / "out")
    keys = {p.partition for p in result.proofs if p.dataset == "analytics"}
    assert keys == {"event_date=2026-06-30", "event_date=2026-07-02"}      # key A's day and key B's day
    assert result.actions["analytics"]["rows_erased"] == len(SERVED)


def test_fulfil_twice_is_refused_and_changes_nothing(rights_lake, policy, tmp_path):
    rid = ask(rights_lake, policy, "erasure")
    answer(rights_lake, policy, rid, tmp_path / "out")
    hashes, first = zone_hashes(rights_lake), stored_request(rights_lake, rid)
    with pytest.raises(FulfilError, match="answered once"):
        answer(rights_lake, policy, rid, tmp_path / "out2")
    assert zone_hashes(rights_lake) == hashes and stored_request(rights_lake, rid) == first


def test_killed_in_the_middle_the_rerun_gives_the_same_answer(rights_lake, policy, tmp_path, monkeypatch):
    import transforms.subjects.fulfil as f
    from transforms.retention import rewrite as rw

    rid = ask(rights_lake, policy, "erasure")
    calls = {"n": 0}
    real = rw.rewrite

    def dies_on_the_second(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real(*a, **kw)

    monkeypatch.setattr(f, "rewrite", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        answer(rights_lake, policy, rid, tmp_path / "out")
    assert stored_request(rights_lake, rid)[0] == "open"
    monkeypatch.setattr(f, "rewrite", real)
    result = answer(rights_lake, policy, rid, tmp_path / "out")
    assert result.counts["analytics"] == 6 and result.actions["analytics"]["rows_erased"] == len(SERVED)
    assert rows_of(rights_lake, "marketing") == 0 and all(p.ok for p in result.proofs)
    assert stored_request(rights_lake, rid)[0] == "fulfilled"


def test_restriction_restricts_every_zone_until_lifted(rights_lake, policy, tmp_path):
    rid = ask(rights_lake, policy, "restriction")
    hashes = zone_hashes(rights_lake)
    result = answer(rights_lake, policy, rid, tmp_path / "out")
    assert {z: v["action"] for z, v in result.actions.items()} == {
        **dict.fromkeys(ZONES, "restricted"), "aggregates": "anonymous"}
    assert zone_hashes(rights_lake) == hashes                       # nothing changed in the lake
    assert stored_request(rights_lake, rid)[3] is not None
    r = lift(rights_lake, policy, rid, reason="accuracy verified", lifted_by="dpo")
    assert r.lifted_at is not None and r.lift_reason == "accuracy verified" and r.lifted_by == "dpo"
    with pytest.raises(FulfilError, match="lifted"):
        lift(rights_lake, policy, rid, reason="again")


def test_what_an_erasure_keeps_is_not_lifted(rights_lake, policy, tmp_path):
    rid = ask(rights_lake, policy, "erasure")
    answer(rights_lake, policy, rid, tmp_path / "out")
    with pytest.raises(FulfilError, match="not lifted"):
        lift(rights_lake, policy, rid, reason="changed our mind")


def test_objection_to_direct_marketing_withdraws_every_such_consent_and_erases_the_profiles(rights_lake, policy,
                                                                                          tmp_path):
    rid = ask(rights_lake, policy, "objection")
    with pytest.raises(FulfilError, match="--scope"):
        answer(rights_lake, policy, rid, tmp_path / "out")
    result = answer(rights_lake, policy, rid, tmp_path / "out", scope="direct_marketing")
    assert result.actions["marketing"]["action"] == "erased" and rows_of(rights_lake, "marketing") == 0
    assert result.actions["consents"]["action"] == "withdrawn"
    assert result.actions["analytics"]["action"] == "unchanged"
    con = duckdb.connect()
    define_standing(con, rights_lake, now_day())
    standing = dict(con.execute("SELECT purpose, granted FROM consent_standing WHERE subscriber_number = ?",
                                [S_NUMBER]).fetchall())
    assert tuple(sorted(policy.consent.direct_marketing_purposes)) == DIRECT_MARKETING
    assert standing == {**dict.fromkeys(DIRECT_MARKETING, False), "value_added_services": True}
    assert stored_request(rights_lake, rid)[3] is None              # nothing restricted


def test_objection_on_legitimate_interest_restricts_analytics_until_decided(rights_lake, policy, tmp_path):
    rid = ask(rights_lake, policy, "objection")
    result = answer(rights_lake, policy, rid, tmp_path / "out", scope="legitimate_interest")
    assert result.actions["analytics"]["action"] == "restricted"
    assert result.actions["billing"]["action"] == "unchanged"
    assert result.restricted
    assert lift(rights_lake, policy, rid, reason="compelling grounds shown").lifted_at is not None


@pytest.mark.parametrize("right", ["access", "portability", "rectification"])
def test_access_portability_and_rectification_answer_with_the_copy(rights_lake, policy, tmp_path, right):
    rid = ask(rights_lake, policy, right)
    hashes = zone_hashes(rights_lake)
    result = answer(rights_lake, policy, rid, tmp_path / "out")
    assert zone_hashes(rights_lake) == hashes
    assert result.counts["billing"] == 6 and result.actions["billing"]["action"] == "exported"
    index = (tmp_path / "out" / "index.html").read_text()
    if right == "portability":
        assert "portable under §6.5" in result.actions["billing"]["note"]
        assert "not covered by §6.5" in result.actions["analytics"]["note"]
    if right == "rectification":
        assert "are not changed" in index and "supplementary statement" in index
    assert (tmp_path / "out" / "billing.json").exists()


def test_no_identifier_reaches_the_store_the_log_or_the_terminal(rights_lake, policy, tmp_path, capsys):
    rid = ask(rights_lake, policy, "erasure")
    answer(rights_lake, policy, rid, tmp_path / "out")
    with reading(rights_lake) as con:
        assert verify_chain(con).ok
        text = "\n".join(str(r) for t in ("subject_requests", "audit_log")
                         for r in con.execute(f"SELECT * FROM {t}").fetchall())
        log = "\n".join(str(r) for r in con.execute("SELECT details FROM audit_log").fetchall())
    out = capsys.readouterr()
    assert scan([rights_lake.zone("audit")], [S_NUMBER, S_IMSI, "040123456"], text + out.out + out.err) == {}
    tokens = requests.list_requests(rights_lake, include_closed=True)[0].tokens.values()
    assert not any(t in log for t in tokens)


def _restricted(lake):
    from transforms.audit_store import reading as r
    from transforms.privacy.restricted import restricted_now

    with r(lake) as con:
        return restricted_now(con)


def test_a_restricted_subject_is_left_out_of_analytics_marketing_and_roaming_until_lifted(rights_lake, policy,
                                                                                         tmp_path):
    from tests.transforms.subjects.conftest import DAY2_ROWS, S_DAY2
    from tests.transforms.privacy.conftest import write_billing
    from transforms.privacy.analytics import build_analytics
    from transforms.privacy.restricted import ANALYTICS, RestrictedFilter
    from transforms.roaming.months import build_months
    from transforms.steps.billing import served_party_sql

    served = served_party_sql("destination_number", "origin_number")
    rid = ask(rights_lake, policy, "restriction")
    answer(rights_lake, policy, rid, tmp_path / "out")
    restricted = _restricted(rights_lake)
    assert {t.kind for t in restricted.tokens} == {"msisdn"} and len(restricted.tokens) == 2    # keys A and B
    # A later file of S's July day: S's data session is left out, O's row goes on.
    later = write_billing(rights_lake, policy, S_DAY2, DAY2_ROWS, "c" * 64)
    made = build_analytics([later], rights_lake, policy, ROTATED, tmp_path / "wa", source_sha256="c" * 64,
                           skip=RestrictedFilter(restricted, ANALYTICS, served))
    assert (made.rows, made.rows_restricted) == (1, 1)
    profiles = build_profiles(rights_lake, policy, ROTATED, [S_DAY2], date(2026, 7, 3), tmp_path / "wm2", restricted)
    assert profiles.rows_restricted == 2 and profiles.days[0].subscribers == 0      # S's data session, twice
    months = build_months(rights_lake, policy, ROTATED, ["2026-06"], tmp_path / "wr", restricted)
    assert months.rows_restricted == 2                     # S's two June rows as the served subscriber
    lift(rights_lake, policy, rid, reason="accuracy verified")
    assert _restricted(rights_lake).tokens == ()
    again = write_billing(rights_lake, policy, S_DAY2, DAY2_ROWS, "d" * 64)
    made = build_analytics([again], rights_lake, policy, ROTATED, tmp_path / "wa2", source_sha256="d" * 64,
                           skip=RestrictedFilter(_restricted(rights_lake), ANALYTICS, served))
    assert (made.rows, made.rows_restricted) == (2, 0)


def test_a_restricted_subject_as_the_other_party_lands_as_null_in_others_rows(rights_lake, policy, tmp_path):
    # §6.4: S's processing is restricted; C1's, C2's, C3's and O's records still land in analytics (their own),
    # but where S is their other party (called, calling or redirected-to number), the cell holds NULL, not S's token.
    from tests.transforms.privacy.conftest import write_billing
    from tests.transforms.subjects.conftest import CALLERS, DAY1_ROWS, S_DAY1, X_NUMBER
    from transforms.privacy.analytics import build_analytics
    from transforms.privacy.restricted import ANALYTICS, RestrictedFilter
    from transforms.steps.billing import served_party_sql

    rid = ask(rights_lake, policy, "restriction")
    answer(rights_lake, policy, rid, tmp_path / "out")
    later = write_billing(rights_lake, policy, S_DAY1, DAY1_ROWS, "e" * 64)
    made = build_analytics([later], rights_lake, policy, ROTATED, tmp_path / "wa", source_sha256="e" * 64,
                           skip=RestrictedFilter(_restricted(rights_lake), ANALYTICS,
                                                 served_party_sql("destination_number", "origin_number")))
    # Rows 1 and 3 are S's own (left out); rows 2, 4, 5 name S once each (destination, origin, redirection); 6 not.
    assert (made.rows, made.rows_restricted, made.cells_blanked) == (4, 2, 3)
    (part,) = made.zone.files
    rows = duckdb.execute("SELECT origin_number, destination_number, redirection_number, imsi, duration_s"
                          " FROM read_parquet(?) ORDER BY duration_s", [str(rights_lake.root / part)]).fetchall()
    s_tokens = {stored(secret, f"msisdn:{S_NUMBER}") for secret in (SECRET_A, SECRET_B)}
    assert not s_tokens & {v for r in rows for v in r[:3]}
    assert not any(t in (rights_lake.root / part).read_bytes() for t in s_tokens)
    by_duration = {r[4]: r for r in rows}
    b = lambda value, kind="msisdn": stored(SECRET_B, f"{kind}:{value}")   # noqa: E731  (key B is current)
    assert by_duration[61][:4] == (b(CALLERS["C1"][0]), None, None, b(CALLERS["C1"][1], "imsi"))
    assert by_duration[62][:4] == (None, b(CALLERS["C2"][0]), None, b(CALLERS["C2"][1], "imsi"))
    assert by_duration[63][:3] == (b(CALLERS["C3"][0]), b(X_NUMBER), None)


def test_a_restricted_night_still_indexes_its_parts_and_counts_only_what_lands(rights_lake, policy, tmp_path):
    # A restriction leaves S's rows out of analytics, not out of billing: the billing part's index must still list
    # S (a search by S reads that part), the analytics index only what the analytics part holds, and the audit
    # counts the identifiers of the rows that landed (rows 2, 4, 5 and 6 of DAY1_ROWS).
    from tests.transforms.privacy.conftest import write_billing
    from tests.transforms.subjects.conftest import DAY1_ROWS, S_DAY1, S_NATIONAL
    from transforms.privacy.analytics import build_analytics
    from transforms.privacy.restricted import ANALYTICS, RestrictedFilter
    from transforms.steps.billing import served_party_sql

    rid = ask(rights_lake, policy, "restriction")
    answer(rights_lake, policy, rid, tmp_path / "out")
    billing = Path(write_billing(rights_lake, policy, S_DAY1, DAY1_ROWS, "e" * 64))
    made = build_analytics([str(billing)], rights_lake, policy, ROTATED, tmp_path / "wa", source_sha256="e" * 64,
                           skip=RestrictedFilter(_restricted(rights_lake), ANALYTICS,
                                                 served_party_sql("destination_number", "origin_number")))
    assert made.rows_restricted == 2
    (part,) = made.zone.files
    part = rights_lake.root / part
    b = lambda value, kind="msisdn": stored(SECRET_B, f"{kind}:{value}")   # noqa: E731  (key B is current)
    listed = dict(duckdb.execute("SELECT raw, token FROM read_parquet(?)", [str(index_path(billing))]).fetchall())
    assert listed[S_NATIONAL] == listed[S_NUMBER] == b(S_NUMBER) and listed[S_IMSI] == b(S_IMSI, "imsi")
    assert listed[O_NUMBER] == b(O_NUMBER)      # the other party of S's own rows is listed too
    in_part = {t for (t,) in duckdb.execute(
        "SELECT unnest([origin_number, destination_number, redirection_number, imsi]) AS t FROM read_parquet(?)",
        [str(part)]).fetchall() if t is not None}
    indexed = {t for (t,) in duckdb.execute("SELECT token FROM read_parquet(?)", [str(index_path(part))]).fetchall()}
    assert indexed == in_part and b(S_NUMBER) not in indexed and b(S_IMSI, "imsi") not in indexed
    # Landed: origin C1, S (blanked in row 4), C3, O; destination S (blanked), C2, X; redirection S (blanked);
    # IMSI C1, C2, C3, O. S's national spelling and IMSI are in S's own rows only, and not counted.
    assert {c: made.tokenized[c] for c in ("origin_number", "destination_number", "redirection_number", "imsi")} \
        == {"origin_number": 4, "destination_number": 3, "redirection_number": 1, "imsi": 4}


def test_the_billing_indexes_find_a_restricted_subject_as_hashing_every_spelling_does(rights_lake, policy,
                                                                                       monkeypatch):
    # Marketing and roaming find a restricted subject's spellings in the billing parts' indexes instead of hashing
    # every spelling of a day or a month; a part whose index cannot be used (none, or made under a key the
    # subject has no token under) is hashed. Every way must find the same spellings and leave out the same rows.
    from tests.transforms.subjects.conftest import S_NATIONAL
    from transforms.lake.connection import connect
    from transforms.privacy.restricted import MARKETING, Restricted, _Spellings, restricted_predicate
    from transforms.steps.billing import served_party_sql

    rid = ask(rights_lake, policy, "restriction")
    answer(rights_lake, policy, rid, rights_lake.root.parent / "out")
    restricted = _restricted(rights_lake)
    files = sorted(str(p) for p in rights_lake.zone("billing").rglob("*.parquet"))
    assert len(files) == 2 and all(index_path(Path(f)).exists() for f in files)     # June (key A), July (key B)
    relation = "read_parquet($files, union_by_name = true)"
    served = served_party_sql("destination_number", "origin_number")

    def found(subject: Restricted, parts) -> tuple[set, int]:
        con = connect()
        try:
            left_out = restricted_predicate(con, relation, {"files": files}, policy, ROTATED, subject, MARKETING,
                                            served, numbers=("destination_number",), parts=parts)
            rows = con.execute(f"SELECT count(*) FROM {relation} WHERE {left_out}", {"files": files}).fetchone()[0]
            return set(con.execute("SELECT kind, raw FROM restricted_raw").fetchall()), rows
        finally:
            con.close()

    expected = ({("msisdn", S_NUMBER), ("msisdn", S_NATIONAL), ("imsi", S_IMSI)}, 3)     # SERVED: S's 3 rows
    assert found(restricted, None) == expected                  # every spelling of both parts hashed
    only_b = Restricted(tuple(t for t in restricted.tokens if t.key_id == ROTATED.current.key_id))
    assert found(only_b, files) == expected                     # June's index (key A) unusable: June hashed
    with monkeypatch.context() as m:
        m.setattr(_Spellings, "_hashed", lambda *a: pytest.fail("hashed with every index usable"))
        assert found(restricted, files) == expected             # both indexes, nothing hashed
    index_path(Path(files[1])).unlink()
    assert found(restricted, files) == expected                 # July without its index: July hashed


def _o_calls_s(lake, policy, tmp_path) -> str:
    """O calls S on 1 July; both consented to profiling since June: O's profile of the day names S."""
    from tests.transforms.privacy.conftest import write_billing
    from tests.transforms.subjects.conftest import O_IMSI, cdr

    day = "2026-07-01"
    write_billing(lake, policy, day, [cdr(O_NUMBER, S_NUMBER, "outgoing", imsi=O_IMSI, service="call",
                                          start=f"{day} 09:00:00")], "f" * 64)
    made = build_profiles(lake, policy, ROTATED, [day], date(2026, 7, 3), tmp_path / "wmo")
    assert made.days[0].called_named == 1
    return day


def test_erasure_takes_the_subject_out_of_the_profiles_that_named_them_and_keeps_those_rows(rights_lake, policy,
                                                                                            tmp_path):
    from transforms.privacy.purpose import marketing_keyring
    from tests.transforms.privacy.conftest import stored as token_of

    day = _o_calls_s(rights_lake, policy, tmp_path)
    path = rights_lake.zone("marketing") / f"event_date={day}" / "part.parquet"
    before = duckdb.execute("SELECT called_parties_other, len(called_parties_consented) FROM read_parquet(?)",
                            [str(path)]).fetchall()
    assert before == [(0, 1)]
    rid = ask(rights_lake, policy, "erasure")
    result = answer(rights_lake, policy, rid, tmp_path / "out")
    m = result.actions["marketing"]
    assert (m["action"], m["rows_blanked"], m["cells_blanked"]) == ("erased", 1, 1)
    # O's row stays; S is counted with the parties not named, never named (they no longer consent).
    assert duckdb.execute("SELECT called_parties_other, called_parties_consented FROM read_parquet(?)",
                          [str(path)]).fetchall() == [(1, [])]
    s_marketing = [token_of(k.secret, f"msisdn:{S_NUMBER}") for k in marketing_keyring(ROTATED, policy).keys]
    for p in rights_lake.zone("marketing").rglob("*.parquet"):
        assert not any(t in p.read_bytes() for t in s_marketing)
    assert any(p.outcome == "blanked" and p.dataset == "marketing" and p.ok for p in result.proofs)
    with reading(rights_lake) as con:
        logged = json.loads(con.execute("SELECT details FROM audit_log WHERE action = 'subject_request_fulfilled'")
                            .fetchone()[0])
    assert logged["cells_blanked"] == {"analytics": 3, "marketing": 1} and logged["files"]["blanked"] >= 2


def test_an_objection_to_direct_marketing_takes_the_subject_out_of_others_profiles_too(rights_lake, policy,
                                                                                       tmp_path):
    day = _o_calls_s(rights_lake, policy, tmp_path)
    rid = ask(rights_lake, policy, "objection")
    result = answer(rights_lake, policy, rid, tmp_path / "out", scope="direct_marketing")
    assert result.actions["marketing"]["cells_blanked"] == 1 and "rows_blanked" not in result.actions["analytics"]
    path = rights_lake.zone("marketing") / f"event_date={day}" / "part.parquet"
    assert duckdb.execute("SELECT called_parties_other, len(called_parties_consented) FROM read_parquet(?)",
                          [str(path)]).fetchall() == [(1, 0)]


def test_killed_while_blanking_the_rerun_finishes_with_the_same_counts(rights_lake, policy, tmp_path, monkeypatch):
    import transforms.retention.blank as b

    rid = ask(rights_lake, policy, "erasure")
    real = b.commit_file

    def killed(*_a, **_kw):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(b, "commit_file", killed)        # after the journal's intent, before the rename
    with pytest.raises(KeyboardInterrupt):
        answer(rights_lake, policy, rid, tmp_path / "out")
    assert stored_request(rights_lake, rid)[0] == "open"
    monkeypatch.setattr(b, "commit_file", real)
    result = answer(rights_lake, policy, rid, tmp_path / "out")
    assert (result.actions["analytics"]["rows_blanked"], result.actions["analytics"]["cells_blanked"]) == (3, 3)
    assert all(p.ok for p in result.proofs) and stored_request(rights_lake, rid)[0] == "fulfilled"
    s_tokens = [stored(secret, f"msisdn:{S_NUMBER}") for secret in (SECRET_A, SECRET_B)]
    for p in rights_lake.zone("analytics").rglob("*"):
        assert p.is_dir() or not any(t in p.read_bytes() for t in s_tokens), p     # no staging file, no index

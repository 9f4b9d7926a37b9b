"""transforms/roaming/window.py: each subscriber assessed over the observation window; the status file.

Expected states are written from the rule (conftest; Impl. Reg. (EU) 2016/2286 Art. 4, policy §3.2 ¶4),
with the "outweighs" shares taken from the policy (`roaming.presence_share_above`,
`roaming.consumption_share_above`).
"""

from __future__ import annotations

import re
import shutil
from datetime import date

import pytest

from tests.leakscan import scan
from tests.transforms.roaming.conftest import (
    AT, COMMUTER, DE, GOLDEN, HOME, LONG_STAY, MB, NEWCOMER, TIE_CONSUMPTION, TIE_PRESENCE, WINDOW, ev,
    month_days, states, tok, write_billing,
)
from transforms.bundled import DEFAULT_POLICY
from transforms.policy import load_policy
from transforms.privacy.keys import HmacKey, KeyRing
from transforms.privacy.tokens import token
from transforms.roaming.months import build_months
from transforms.roaming.schema import STATUS_COLUMNS
from transforms.roaming.window import assess_window, month_files

# ---------------------------------------------------------------- the window rule, golden cases


def test_golden_states(golden, policy):
    lake, _ = golden
    result = assess_window(lake, policy, "2026-06")
    got = states(lake, result)
    assert got[tok(COMMUTER)]["state"] == "not_flagged"
    assert got[tok(COMMUTER)]["presence_outweighs"] and not got[tok(COMMUTER)]["consumption_outweighs"]
    assert got[tok(LONG_STAY)]["state"] == "flagged"
    assert got[tok(NEWCOMER)]["state"] == "insufficient_history"
    assert got[tok(TIE_PRESENCE)]["state"] == "not_flagged"
    assert not got[tok(TIE_PRESENCE)]["presence_outweighs"] and got[tok(TIE_PRESENCE)]["consumption_outweighs"]
    assert got[tok(TIE_CONSUMPTION)]["state"] == "not_flagged"
    assert got[tok(TIE_CONSUMPTION)]["presence_outweighs"] and not got[tok(TIE_CONSUMPTION)]["consumption_outweighs"]
    assert (result.flagged, result.not_flagged, result.insufficient_history) == (1, 3, 1)
    assert result.by_state == {"flagged": 1, "not_flagged": 3, "insufficient_history": 1}
    assert result.window_months == tuple(WINDOW) and result.months_missing == ()
    assert result.path == "roaming/status/as_of=2026-06/part.parquet"
    assert result.subscribers == len(got) == 5 and result.clause == policy.roaming.clause


def test_figures_behind_the_flag(golden, policy):
    lake, _ = golden
    s = states(lake, assess_window(lake, policy, "2026-06"))[tok(LONG_STAY)]
    # 4 months x 25 days in DE and 3 at home; 25 calls of 5 min and 25 x 500 MB a month roaming.
    assert (s["days_home"], s["days_eu_roaming"], s["days_other_roaming"]) == (12, 100, 0)
    assert s["voice_min_eu_roaming"] == 500 and s["voice_min_home"] == 0
    assert s["data_bytes_eu_roaming"] == 4 * 25 * 500 * MB and s["data_bytes_home"] == 4 * 3 * 10 * MB
    assert (s["window_start_month"], s["as_of_month"], s["first_month"], s["months_with_data"]) == (
        "2026-03", "2026-06", "2026-03", 4)
    tie = states(lake, assess_window(lake, policy, "2026-06"))[tok(TIE_CONSUMPTION)]
    assert tie["roaming_consumption_share"] == pytest.approx(0.5)
    assert tie["data_bytes_eu_roaming"] == tie["data_bytes_home"] and tie["sms_out_eu_roaming"] == tie["sms_out_home"]


def test_status_columns(golden, policy, pq_columns):
    lake, _ = golden
    result = assess_window(lake, policy, "2026-06")
    assert pq_columns(lake.root / result.path) == [n for n, _ in STATUS_COLUMNS]


def test_history_is_judged_against_the_window_start(golden, policy):
    lake, _ = golden
    # A window ending in May starts in February, before anyone's first month: all insufficient.
    result = assess_window(lake, policy, "2026-05")
    assert result.insufficient_history == 5 and result.flagged == 0
    assert result.months_missing == ("2026-02",)


def test_long_inactivity_indicator(lake, policy, keyring, work_dir):
    # A SIM used almost only abroad, active on a few days of March and then silent to the end of June:
    # 5 roaming days vs 1 home day, and more than 90 days without any event.
    sleeper = ("293401000000009", "+38640100009")
    rows = [ev(sleeper, d, AT, volume=5 * MB) for d in month_days("2026-03", 1, 5)]
    rows += [ev(sleeper, date(2026, 3, 6), HOME, volume=1 * MB)]
    rows += [ev(COMMUTER, d, HOME, volume=MB) for m in WINDOW for d in month_days(m, 1, 3)]
    write_billing(lake, rows)
    build_months(lake, policy, keyring, WINDOW, work_dir)
    result = assess_window(lake, policy, "2026-06")
    got = states(lake, result)
    s = got[tok(sleeper)]
    assert s["longest_inactive_days"] == (date(2026, 6, 30) - date(2026, 3, 6)).days
    assert s["long_inactivity"] and s["state"] == "flagged"
    assert not got[tok(COMMUTER)]["long_inactivity"]     # mainly at home
    assert result.long_inactivity == 1


def test_no_raw_identifier_in_roaming_outputs(golden, policy):
    lake, _ = golden
    assess_window(lake, policy, "2026-06")
    needles = [s[0] for s in GOLDEN] + [s[1] for s in GOLDEN] + [s[1].lstrip("+") for s in GOLDEN] + ["+38641999999"]
    assert scan([lake.zone("roaming")], needles) == {}
    files = list(lake.zone("roaming").rglob("*"))
    assert all(not p.name.startswith(".") for p in files)       # no staging folders left behind


def test_each_key_id_is_assessed_on_its_own(golden, policy, work_dir):
    # June rebuilt after a key rotation: its tokens cannot be matched with March-May's, so under the new
    # key every subscriber starts over (one month: insufficient history), under the old one June is missing.
    lake, _ = golden
    new_key = HmacKey("k-rotated", bytes(range(64)))
    build_months(lake, policy, KeyRing(new_key), ["2026-06"], work_dir)
    result = assess_window(lake, policy, "2026-06")
    got = states(lake, result)
    assert result.key_ids == ("demo-key-not-secret", "k-rotated")
    assert result.subscribers == 10
    for sub in GOLDEN:
        rotated = got[bytes.fromhex(token(new_key, "imsi", sub[0]))]
        assert (rotated["hmac_key_id"], rotated["state"], rotated["months_with_data"]) == (
            "k-rotated", "insufficient_history", 1)
        assert got[tok(sub)]["months_with_data"] == (2 if sub is NEWCOMER else 3)
    assert got[tok(LONG_STAY)]["state"] == "flagged"          # March-May alone still show it


# ---------------------------------------------------------------- the thresholds come from the policy

SHARE_55 = ("293401000000011", "+38640100011")       # consumption share 0.55, presence 5/8
PRESENCE_57 = ("293401000000012", "+38640100012")    # presence 4/7, consumption ~0.99


@pytest.fixture()
def near_half(lake, policy, keyring, work_dir):
    """Two subscribers whose shares sit between one half and 0.6, every month of the window."""
    rows = []
    for month in WINDOW:
        rows += [ev(SHARE_55, d, AT, volume=11 * MB) for d in month_days(month, 1, 5)]        # 55 MB roaming
        rows += [ev(SHARE_55, d, HOME, volume=15 * MB) for d in month_days(month, 6, 3)]      # 45 MB at home
        rows += [ev(PRESENCE_57, d, DE, volume=100 * MB) for d in month_days(month, 1, 4)]
        rows += [ev(PRESENCE_57, d, HOME, volume=1 * MB) for d in month_days(month, 6, 3)]
    write_billing(lake, rows)
    build_months(lake, policy, keyring, WINDOW, work_dir)
    return lake


def policy_with(tmp_path, key: str, value: str):
    """The real policy file with `roaming.<key>` set to `value`, loaded from a copy."""
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    changed, n = re.subn(rf"(?m)^(  {key}:) 0\.5$", rf"\g<1> {value}", text)
    assert n == 1
    path = tmp_path / "policy.yaml"
    path.write_text(changed, encoding="utf-8")
    return load_policy(path)


def test_shares_above_one_half_outweigh_with_the_real_policy(near_half, policy):
    got = states(near_half, assess_window(near_half, policy, "2026-06"))
    share, presence = got[tok(SHARE_55)], got[tok(PRESENCE_57)]
    assert share["roaming_consumption_share"] == pytest.approx(0.55)
    assert (share["presence_outweighs"], share["consumption_outweighs"], share["state"]) == (True, True, "flagged")
    assert (presence["days_eu_roaming"], presence["days_home"]) == (16, 12)
    assert (presence["presence_outweighs"], presence["consumption_outweighs"], presence["state"]) == (
        True, True, "flagged")


def test_consumption_share_above_comes_from_the_policy(near_half, tmp_path):
    strict = policy_with(tmp_path, "consumption_share_above", "0.6")
    assert strict.roaming.consumption_share_above == 0.6
    result = assess_window(near_half, strict, "2026-06")
    got = states(near_half, result)
    share = got[tok(SHARE_55)]
    assert (share["presence_outweighs"], share["consumption_outweighs"], share["state"]) == (
        True, False, "not_flagged")                       # 0.55 does not outweigh when 0.6 is asked
    assert got[tok(PRESENCE_57)]["state"] == "flagged"
    assert (result.flagged, result.not_flagged) == (1, 1)


def test_presence_share_above_comes_from_the_policy(near_half, tmp_path):
    strict = policy_with(tmp_path, "presence_share_above", "0.6")
    got = states(near_half, assess_window(near_half, strict, "2026-06"))
    presence = got[tok(PRESENCE_57)]
    assert (presence["presence_outweighs"], presence["consumption_outweighs"], presence["state"]) == (
        False, True, "not_flagged")                       # 16 of 28 days: 0.57
    assert got[tok(SHARE_55)]["state"] == "flagged"       # 5 of 8 days: 0.625


# ---------------------------------------------------------------- a window with no subscriber

def test_a_window_with_no_subscriber_writes_no_file(lake, policy):
    result = assess_window(lake, policy, "2026-06")
    assert result.path is None and result.subscribers == 0 and result.key_ids == ()
    assert result.by_state == {"flagged": 0, "not_flagged": 0, "insufficient_history": 0}
    assert result.months_missing == tuple(WINDOW)
    assert not (lake.zone("roaming") / "status").exists() or not any((lake.zone("roaming") / "status").iterdir())


def test_months_outside_the_window_are_no_subscriber(golden, policy):
    lake, _ = golden
    result = assess_window(lake, policy, "2026-12")                # window September - December
    assert result.path is None and result.subscribers == 0
    assert not (lake.zone("roaming") / "status" / "as_of=2026-12").exists()


def test_a_stale_status_of_that_month_is_removed(golden, policy):
    lake, _ = golden
    assert assess_window(lake, policy, "2026-06").path is not None
    assert assess_window(lake, policy, "2026-05").path is not None
    # The months go (as the retention sweep removes them); the June window assessed again has nobody.
    for month in month_files(lake).values():
        shutil.rmtree(month.parent)
    result = assess_window(lake, policy, "2026-06")
    assert result.path is None and result.subscribers == 0
    assert not (lake.zone("roaming") / "status" / "as_of=2026-06").exists()
    assert (lake.zone("roaming") / "status" / "as_of=2026-05" / "part.parquet").is_file()   # another month's


def test_month_files(golden):
    lake, _ = golden
    (lake.zone("roaming") / "month=2026-13").mkdir()                  # not a month
    (lake.zone("roaming") / "month=2026-07").mkdir()                  # no file in it
    assert list(month_files(lake)) == WINDOW
    assert list(month_files(lake, up_to="2026-04")) == WINDOW[:2]

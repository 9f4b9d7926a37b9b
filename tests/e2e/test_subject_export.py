"""`cdr-audit subject export` end to end: three generated nights through the CLI, the HMAC key rotated before
the third, then one subscriber's copy of their data.

The subscriber is one of the generator's population (same seed, same rows: the same people every night); what
the export must hold follows from what the generator wrote: the payments extracts' rows of that number, the
CDRs the billing zone holds with that number (read as raw values, without tokens), and the IMSI the generator
gave that subscriber.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import json
import stat
from datetime import date

import pytest

from tests.conftest import audit_rows, run_cli, zone_rows
from tests.leakscan import scan

pytestmark = pytest.mark.slow

NIGHTS = ("2026-11-20", "2026-11-21", "2026-11-22")
ROWS, SEED = 1500, 23
NEW_KEY, NEW_KEY_ID = bytes(range(100, 132)), "k2026-11"
STATUSES = ("paid", "open", "partially_paid", "disputed", "written_off")


@functools.lru_cache(maxsize=None)
def e164(number: str) -> str:
    from transforms.privacy.numbers import normalize_e164

    return normalize_e164(number, _operator())


@functools.lru_cache(maxsize=1)
def _operator():
    from transforms.policy import load_policy

    return load_policy().operator


def token(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()[:32]


@pytest.fixture(scope="module")
def rotated_env(tmp_path_factory):
    """The environment of a run after the rotation: a new current key, the demo key retired but held."""
    from transforms.privacy.keys import DEMO_KEY_ID, demo_keyring

    retired = tmp_path_factory.mktemp("keys") / "retired.keys"
    retired.write_text(f"{DEMO_KEY_ID}:{demo_keyring().current.secret.hex()}\n")
    retired.chmod(0o600)
    return {"CDR_AUDIT_HMAC_KEY": NEW_KEY.hex(), "CDR_AUDIT_HMAC_KEY_ID": NEW_KEY_ID,
            "CDR_AUDIT_HMAC_RETIRED_KEYS_FILE": str(retired)}


def with_env(env: dict, fn):
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        return fn()


@pytest.fixture(scope="module")
def lake(tmp_path_factory, rotated_env):
    """Three nights; the first two pseudonymized with the demo key, the third with the new key."""
    from sample_data.generate import generate_night

    root = tmp_path_factory.mktemp("subject-e2e")
    lake, manifests = root / "lake", {}
    for night in NIGHTS:
        landing = root / night
        manifests[night] = generate_night(landing, rows=ROWS, seed=SEED, night=date.fromisoformat(night))
        args = ("run", "--landing", str(landing), "--lake", str(lake), "--date", night, "--quiet")
        run = with_env(rotated_env, lambda: run_cli(*args)) if night == NIGHTS[-1] else run_cli(*args)
        assert run.returncode == 0, run.stderr[-3000:]
    return root, lake, manifests


def payments_rows(root, number: str) -> list[dict]:
    out = []
    for night in NIGHTS:
        with open(root / night / f"payments_{night}.csv", newline="", encoding="utf-8") as fh:
            out += [r for r in csv.DictReader(fh) if r["subscriber_number"] == number]
    return out


def clean_payments(rows: list[dict]) -> bool:
    """Rows the payments step loads: no defect the generator injects (README: one of each per night)."""
    ids = [(r["invoice_id"], r["billing_period"]) for r in rows]
    return all(r["invoice_id"] and r["status"] in STATUSES and _is_date(r["invoice_date"]) for r in rows) \
        and len(ids) == len(set(ids)) * len(NIGHTS)


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
        return True
    except ValueError:
        return False


@pytest.fixture(scope="module")
def subject(lake):
    """A postpaid subscriber served on every night, whose invoices carry no injected defect."""
    from sample_data.generate.subscribers import Population, population_size

    root, _, manifests = lake
    pop = Population.build(SEED, population_size(ROWS))
    numbers, imsis = pop.msisdn.to_pylist(), pop.imsi.to_pylist()
    served_every_night = set.intersection(*(set(m.msisdns) for m in manifests.values()))
    for number, imsi in zip(numbers, imsis):
        if number in served_every_night and number in manifests[NIGHTS[-1]].payment_msisdns:
            rows = payments_rows(root, number)
            if rows and clean_payments(rows):
                return number, imsi, rows
    pytest.fail("the generator wrote no suitable subscriber")


@pytest.fixture(scope="module")
def exported(lake, subject, rotated_env, tmp_path_factory):
    _, lake_dir, _ = lake
    number, _, _ = subject
    out = tmp_path_factory.mktemp("exports") / "subject"
    national = "0" + number[4:]
    run = with_env(rotated_env, lambda: run_cli("subject", "export", "--lake", str(lake_dir), "--msisdn", national,
                                                "--out", str(out)))
    assert run.returncode == 0, run.stderr[-3000:]
    return out, run


def billing_of(lake_dir, number: str) -> tuple[list[dict], list[dict]]:
    """The billing zone's rows with the subject's number, as raw values: (served, other party)."""
    cols = ["origin_number", "destination_number", "redirection_number", "direction", "imsi", "imei", "cell_id",
            "start_time", "duration_s"]
    rows = [dict(zip(cols, r)) for r in zone_rows(lake_dir, "billing", f"SELECT {', '.join(cols)} FROM t")]
    served, other = [], []
    for r in rows:
        me = r["destination_number"] if r["direction"] in ("incoming", "forwarded") else r["origin_number"]
        numbers = {e164(r[c]) for c in ("origin_number", "destination_number", "redirection_number") if r[c]}
        if me and e164(me) == number:
            served.append(r)
        elif number in numbers:
            other.append(r)
    return served, other


def test_the_subject_is_found_in_every_zone_the_generator_put_them(lake, subject, exported):
    _, lake_dir, _ = lake
    number, imsi, payments = subject
    out, _ = exported
    summary = json.loads((out / "summary.json").read_text())
    served, other = billing_of(lake_dir, number)
    assert served and other                                 # 38% of calls are on-net: they are called too
    billing = json.loads((out / "billing.json").read_text())
    assert summary["zones"]["billing"] == len(served) + len(other)
    assert sum(r["subject_role"] == "served" for r in billing) == len(served)
    assert {r["imsi"] for r in billing if r["subject_role"] == "served"} - {None} == {imsi}   # PBX legs: no IMSI
    # Invoices: every row of the payments extracts with the subject's number (one per invoice and extract).
    invoices = json.loads((out / "invoices.json").read_text())
    assert summary["zones"]["invoices"] == len(payments)
    assert sorted(r["invoice_id"] for r in invoices) == sorted(r["invoice_id"] for r in payments)
    # Analytics: one row per billing row, under the key of the night that made it: both sides of the rotation.
    from transforms.privacy.keys import DEMO_KEY_ID

    analytics = json.loads((out / "analytics.json").read_text())
    assert summary["zones"]["analytics"] == len(served) + len(other)
    assert {r["hmac_key_id"] for r in analytics} == {DEMO_KEY_ID, NEW_KEY_ID}
    # Roaming: the subscriber's IMSI token, under the key of the run that wrote it.
    from transforms.privacy.keys import demo_keyring

    secrets = {DEMO_KEY_ID: demo_keyring().current.secret, NEW_KEY_ID: NEW_KEY}
    roaming = json.loads((out / "roaming.json").read_text())
    assert any(r["roaming_record"] == "month" and r["month"] == "2026-11" for r in roaming)
    assert all(r["subscriber_token"].lower() == token(secrets[r["hmac_key_id"]], f"imsi:{imsi}") for r in roaming)
    assert summary["zones"]["aggregates"] == 0 and summary["actions"]["aggregates"] == "anonymous"
    # Consents and marketing: searched (the generated nights may or may not hold the subscriber's consent).
    assert summary["actions"]["consents"] in ("exported", "absent")
    assert summary["actions"]["marketing"] in ("exported", "absent")


def test_other_party_rows_carry_nothing_of_the_caller(lake, subject, exported):
    _, lake_dir, _ = lake
    number, imsi, _ = subject
    out, _ = exported
    served, other = billing_of(lake_dir, number)
    # The callers' identifiers, less those the subject's own rows hold anyway (someone they called themselves).
    own = {v for r in served for v in r.values() if v is not None}
    own |= {e164(r[c]) for r in served for c in ("origin_number", "destination_number", "redirection_number")
            if r[c]}
    callers = set()
    for r in other:
        for c in ("origin_number", "destination_number", "redirection_number", "imsi", "imei", "cell_id"):
            v = r[c]
            if v and v not in own and (c not in ("origin_number", "destination_number", "redirection_number")
                                        or e164(v) not in own):
                callers.add(v)
    callers = {v for v in callers if len(v) >= 6 and v != number}
    assert callers
    assert scan([out], sorted(callers)) == {}


def test_files_counts_and_modes(exported):
    out, _ = exported
    summary = json.loads((out / "summary.json").read_text())
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}
    for zone, n in summary["zones"].items():
        with open(out / f"{zone}.csv", newline="", encoding="utf-8") as fh:
            assert len(list(csv.DictReader(fh))) == len(json.loads((out / f"{zone}.json").read_text())) == n, zone


def test_nothing_of_the_subject_on_the_terminal(subject, exported):
    number, imsi, _ = subject
    out, run = exported
    needles = [number, number.lstrip("+"), "0" + number[4:], imsi]
    assert scan([], needles, run.stdout + run.stderr) == {}
    assert str(out) in run.stdout and "billing" in run.stdout


# ------------------------------------------------------------------ answering requests through the CLI

@pytest.fixture()
def lake_copy(lake, tmp_path):
    """A copy of the three nights' lake (modes kept): answering a request changes the lake."""
    import shutil

    root, lake_dir, manifests = lake
    copy = tmp_path / "lake"
    shutil.copytree(lake_dir, copy, symlinks=True)
    return root, copy


def request_and_fulfil(env: dict, lake_dir, right: str, national: str, out, *extra: str) -> tuple[str, dict]:
    rec = with_env(env, lambda: run_cli("subject", "request", "--lake", str(lake_dir), "--right", right,
                                        "--msisdn", national, "--received", "2026-11-23", "--today", "2026-11-24"))
    assert rec.returncode == 0, rec.stderr[-3000:]
    request_id = rec.stdout.strip().splitlines()[-1]
    ful = with_env(env, lambda: run_cli("subject", "fulfil", request_id, "--lake", str(lake_dir), "--out", str(out),
                                        "--today", "2026-11-24", "--by", "dpo", *extra))
    assert ful.returncode == 0, ful.stderr[-3000:]
    for text in (rec.stdout, rec.stderr, ful.stdout, ful.stderr):
        assert national not in text and national[1:] not in text
    return request_id, json.loads((out / "summary.json").read_text())


def analytics_rows_of(lake_dir, number: str, served_only: bool = False) -> int:
    """Analytics rows holding the subscriber's token (any tokenized column; `served_only`: as the served party,
    the caller of an outgoing record, the called party of an incoming or forwarded one), under either key."""
    from transforms.privacy.keys import DEMO_KEY_ID, demo_keyring

    secrets = {DEMO_KEY_ID: demo_keyring().current.secret, NEW_KEY_ID: NEW_KEY}
    rows = zone_rows(lake_dir, "analytics",
                     "SELECT hmac_key_id, hex(origin_number), hex(destination_number), direction FROM t")
    mine = {kid: token(s, f"msisdn:{number}").upper() for kid, s in secrets.items()}
    if served_only:
        return sum(mine[kid] == (d if direction in ("incoming", "forwarded") else o) for kid, o, d, direction in rows)
    return sum(mine[kid] in (o, d) for kid, o, d, _ in rows)


def subject_tokens(number: str, imsi: str, env: dict) -> set[bytes]:
    """Every token of the subscriber a zone of tokens could hold, under every key of `env`: their number's and
    IMSI's (analytics, roaming) and their number's marketing token (transforms.privacy.tokens.derive_tokens,
    purpose.marketing_tokens)."""
    from transforms.policy import load_policy
    from transforms.privacy.keys import load_keyring
    from transforms.privacy.purpose import marketing_tokens
    from transforms.privacy.tokens import derive_tokens

    policy, ring = load_policy(), load_keyring(env, demo=True)      # the first nights ran with the demo key
    made = [derive_tokens(number, "msisdn", ring, policy.operator), derive_tokens(imsi, "imsi", ring, policy.operator),
            marketing_tokens(number, ring, policy)]
    return {bytes.fromhex(t) for tokens in made for t in tokens.values()}


def files_holding(files, needles: set[bytes]) -> list[str]:
    """Of `files` (Parquet), those holding one of `needles`: in their raw bytes, or in any BLOB or BLOB[] value."""
    import duckdb

    hits = []
    con = duckdb.connect()
    for f in files:
        if any(n in f.read_bytes() for n in needles):
            hits.append(str(f))
            continue
        types = con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?,"
                            " hive_partitioning = false))", [str(f)]).fetchall()
        cells = [f"SELECT {c} AS v FROM read_parquet($f, hive_partitioning = false)" for c, t in types if t == "BLOB"]
        cells += [f"SELECT unnest({c}) AS v FROM read_parquet($f, hive_partitioning = false)" for c, t in types
                  if t == "BLOB[]"]
        if cells and con.execute(f"SELECT count(*) FROM ({' UNION ALL '.join(cells)}) WHERE list_contains($n, v)",
                                 {"f": str(f), "n": sorted(needles)}).fetchone()[0]:
            hits.append(str(f))
    con.close()
    return hits


def others_naming(rows: list[dict], number: str, imsi: str) -> tuple[int, int]:
    """Of billing rows (`billing_of`'s columns), those someone else is served in that hold the subscriber, and the
    cells that do: their number in a number column, their IMSI (their SIM forwarding a call to another, who is
    then the served party). Each has an analytics twin the subscriber must be blanked in."""
    rows_, cells = 0, 0
    for r in rows:
        me = r["destination_number"] if r["direction"] in ("incoming", "forwarded") else r["origin_number"]
        if me and e164(me) == number:
            continue
        n = sum(bool(r[c]) and e164(r[c]) == number for c in ("origin_number", "destination_number",
                                                              "redirection_number")) + (r["imsi"] == imsi)
        rows_, cells = rows_ + (n > 0), cells + n
    return rows_, cells


def all_billing(lake_dir) -> list[dict]:
    cols = ["origin_number", "destination_number", "redirection_number", "direction", "imsi", "event_date"]
    return [dict(zip(cols, r)) for r in zone_rows(lake_dir, "billing", f"SELECT {', '.join(cols)} FROM t")]


def token_zone_files(lake_dir) -> list:
    """Every Parquet file of the analytics and marketing zones: parts, subject indexes, hidden ones too."""
    return sorted(p for zone in ("analytics", "marketing") for p in (lake_dir / zone).rglob("*")
                  if p.is_file() and (p.suffix in (".parquet", ".tokens") or ".parquet." in p.name))


def test_erasure_through_the_cli_erases_what_the_law_lets_go_and_restricts_billing(lake_copy, subject, rotated_env,
                                                                                   tmp_path):
    _, lake_dir = lake_copy
    number, imsi, _ = subject
    served, other = billing_of(lake_dir, number)
    before = analytics_rows_of(lake_dir, number)
    assert before == len(served) + len(other)
    needles = subject_tokens(number, imsi, rotated_env)
    assert files_holding(token_zone_files(lake_dir), needles)          # the three nights hold the subject's tokens
    rows_before = {z: zone_rows(lake_dir, z, "SELECT count(*) FROM t")[0][0] for z in ("analytics", "marketing")}
    own_before = analytics_rows_of(lake_dir, number, served_only=True)
    request_id, summary = request_and_fulfil(rotated_env, lake_dir, "erasure", "0" + number[4:], tmp_path / "answer")
    assert summary["request_id"] == request_id and summary["right"] == "erasure"
    actions = {zone: a["action"] for zone, a in summary["actions"].items()}
    # §6.3 against §5: pseudonymized further use goes; billing (until paid, at most the limitation period) and
    # invoices (ten years, VAT law) are a legal obligation, so they are kept, restricted, with the date they go.
    assert actions["analytics"] == "erased" and actions["billing"] == "restricted" and actions["invoices"] == "restricted"
    assert summary["actions"]["billing"]["goes_on"] and summary["actions"]["invoices"]["goes_on"] >= "2037-01-01"
    # The subject's own analytics rows are gone; other subscribers' calls to them stay (their rows), but name them no
    # more: no analytics or marketing file anywhere holds any of their tokens, under any key (§6.3).
    assert analytics_rows_of(lake_dir, number, served_only=True) == 0
    assert analytics_rows_of(lake_dir, number) == 0
    assert files_holding(token_zone_files(lake_dir), needles) == []
    rows_after = {z: zone_rows(lake_dir, z, "SELECT count(*) FROM t")[0][0] for z in ("analytics", "marketing")}
    assert rows_after["analytics"] == rows_before["analytics"] - own_before
    assert rows_after["marketing"] == rows_before["marketing"] - summary["zones"]["marketing"]
    # Every row of someone else's naming the subject in billing had its analytics twin blanked, cell by cell.
    rows, cells = others_naming(all_billing(lake_dir), number, imsi)
    assert rows >= len(other) and (summary["actions"]["analytics"]["rows_blanked"],
                                   summary["actions"]["analytics"]["cells_blanked"]) == (rows, cells)
    assert len(billing_of(lake_dir, number)[0]) == len(served)          # kept, restricted
    listed = with_env(rotated_env, lambda: run_cli("subject", "list", "--lake", str(lake_dir), "--all",
                                                   "--today", "2026-11-24"))
    assert listed.returncode == 0 and request_id in listed.stdout and "fulfilled" in listed.stdout
    again = with_env(rotated_env, lambda: run_cli("subject", "fulfil", request_id, "--lake", str(lake_dir),
                                                  "--out", str(tmp_path / "again"), "--today", "2026-11-24"))
    assert again.returncode != 0 and "fulfilled" in (again.stderr + again.stdout)
    scan_hits = scan([lake_dir / "audit", lake_dir / "reports", tmp_path / "again"], [number, number[1:], "0" + number[4:]])
    assert not scan_hits


def grant_profiling_to_everyone(landing, day: str) -> None:
    """A consent extract in `landing` granting profiling to every subscriber of the population, recorded at the end
    of `day` (after every event the generator records that day): tonight everyone's consent stands for `day`."""
    from sample_data.generate.subscribers import Population, population_size

    numbers = Population.build(SEED, population_size(ROWS)).msisdn.to_pylist()
    (landing / f"consents_everyone_{day}.csv").write_text(
        "subscriber_number,purpose,status,recorded_at,channel\n"
        + "".join(f"{n},marketing_profiling,granted,{day}T23:30:00Z,self_care_app\n" for n in numbers))


def callers_of(lake_dir, number: str, day: str) -> set[str]:
    """Those who called the subscriber (a call, SMS or MMS they made, as its served party) on `day`, in E.164:
    the parties whose profile of the day names them when both consented (docs/design.md §11)."""
    rows = zone_rows(lake_dir, "billing", "SELECT origin_number, destination_number FROM t"
                                          f" WHERE CAST(event_date AS VARCHAR) = '{day}'"
                                          " AND service_type IN ('call', 'sms', 'mms')"
                                          " AND coalesce(direction NOT IN ('incoming', 'forwarded'), true)")
    return {e164(o) for o, d in rows if d and o and e164(d) == number and e164(o) != number}


def naming(lake_dir, token: bytes, day: str) -> tuple[int, int]:
    """Of the day's marketing profiles, the rows naming `token` as a called party, and the subscriber's own."""
    return zone_rows(lake_dir, "marketing", "SELECT count(*) FILTER (WHERE list_contains(called_parties_consented,"
                                            f" from_hex('{token.hex()}'))), count(*) FILTER (WHERE subscriber_token ="
                                            f" from_hex('{token.hex()}')) FROM t"
                                            f" WHERE CAST(event_date AS VARCHAR) = '{day}'")[0]


def test_a_restriction_keeps_the_subject_out_of_the_next_night_until_lifted(lake_copy, subject, rotated_env,
                                                                            tmp_path):
    import time

    from sample_data.generate import generate_night
    from transforms.policy import load_policy
    from transforms.privacy.keys import load_keyring
    from transforms.privacy.purpose import marketing_tokens

    root, lake_dir = lake_copy
    number, imsi, _ = subject
    request_id, summary = request_and_fulfil(rotated_env, lake_dir, "restriction", "0" + number[4:],
                                             tmp_path / "answer")
    assert set(a["action"] for a in summary["actions"].values()) <= {"restricted", "anonymous", "absent"}
    before = analytics_rows_of(lake_dir, number, served_only=True)
    ring = load_keyring(rotated_env, demo=True)                        # the first nights ran with the demo key
    marketing_token = bytes.fromhex(marketing_tokens(number, ring, load_policy())[NEW_KEY_ID])

    def night(day: str) -> tuple[int, dict]:
        landing = tmp_path / day
        generate_night(landing, rows=ROWS, seed=SEED, night=date.fromisoformat(day))
        grant_profiling_to_everyone(landing, day)
        run = with_env(rotated_env, lambda: run_cli("run", "--landing", str(landing), "--lake", str(lake_dir),
                                                    "--date", day, "--quiet"))
        assert run.returncode == 0, run.stderr[-3000:]
        (details,) = audit_rows(lake_dir, "SELECT details FROM audit_log WHERE action = 'run_finished'"
                                          " ORDER BY seq DESC LIMIT 1")[0]
        return len([r for r in billing_of(lake_dir, number)[0]]), json.loads(details)

    served_before = len(billing_of(lake_dir, number)[0])
    billing_before = all_billing(lake_dir)
    files_before = set(token_zone_files(lake_dir))
    started = time.time()
    served_after, finished = night("2026-11-23")
    assert served_after > served_before                          # billing still lands (a legal obligation)...
    # ... but no new analytics row of the subject's own (each left out, counted), and others' rows of the night land
    # without the subject's token: none of the night's analytics or marketing files holds any of them.
    assert analytics_rows_of(lake_dir, number, served_only=True) == before
    assert finished["rows_restricted"]["analytics"] == served_after - served_before
    tonight = [p for p in token_zone_files(lake_dir) if p not in files_before or p.stat().st_mtime >= started]
    assert any(p.parent.name == "event_date=2026-11-23" for p in tonight)
    assert any(p.parent.parent.name == "marketing" for p in tonight)
    assert files_holding(tonight, subject_tokens(number, imsi, rotated_env)) == []
    # Counted, never named: a blanked cell per number column and IMSI of the subscriber's in tonight's rows of
    # others (a forwarded leg of their SIM served to another included: that other's record, `privacy.restricted`).
    tonight_rows = [r for r in all_billing(lake_dir) if r not in billing_before]
    _, cells = others_naming(tonight_rows, number, imsi)
    assert cells and finished.get("cells_blanked", {}).get("analytics", 0) == cells
    # Everyone consented for the day: each who called them made a profile that would name them, and counts them
    # instead while the restriction stands (days the night rebuilt before the 23rd may add theirs).
    callers = callers_of(lake_dir, number, "2026-11-23")
    assert callers and finished["cells_blanked"]["marketing"] >= len(callers)
    assert naming(lake_dir, marketing_token, "2026-11-23") == (0, 0)
    lifted = with_env(rotated_env, lambda: run_cli("subject", "lift", request_id, "--lake", str(lake_dir),
                                                   "--reason", "accuracy verified", "--today", "2026-11-25"))
    assert lifted.returncode == 0, lifted.stderr[-3000:]
    _, finished = night("2026-11-24")
    assert analytics_rows_of(lake_dir, number, served_only=True) > before     # lifted: derived again
    # ... and named again, on their consent and their callers': by each caller's profile of the day, and their own.
    assert "cells_blanked" not in finished and "rows_restricted" not in finished
    assert naming(lake_dir, marketing_token, "2026-11-24") == (len(callers_of(lake_dir, number, "2026-11-24")), 1)

"""transforms/policy.py: the real policy file loads; broken variants fail naming the key and the problem."""

from __future__ import annotations

import copy
import hashlib

import pytest
import yaml

from transforms.policy import DEFAULT_POLICY, Period, PolicyError, load_policy

# DESIGN §1, the table of the §3.2 allowed billing-data list, written out by hand in its order.
DESIGN_CANONICAL = (
    "origin_number",                                          # 1
    "destination_number",                                     # 2
    "direction",                                              # 3
    "start_time", "duration_s",                               # 4
    "service_type",                                           # 5
    "redirection_number",                                     # 6
    "data_volume_bytes", "data_rate_kbps", "apn",             # 7
    "free_units_used",                                        # 8
    "cell_id", "location_area",                               # 9
    "imsi",                                                   # 10
    "imei",                                                   # 11
    "origin_network", "termination_network",                  # 12
    "service_area",                                           # 13
    "origin_country_code",                                    # 14
    "called_country_code",                                    # 15
    "tariff_code", "unit_price",                              # 16
    "charged_amount", "discount_amount", "currency",          # 17
    "tax_amount",                                             # 18
)


@pytest.fixture(scope="module")
def doc() -> dict:
    """The real policy file as a plain dict, to derive broken variants from."""
    return yaml.safe_load(DEFAULT_POLICY.read_bytes())


def dump(tmp_path, doc: dict, name: str = "policy.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def load_variant(tmp_path, doc: dict, edit) -> PolicyError:
    bad = copy.deepcopy(doc)
    edit(bad)
    with pytest.raises(PolicyError) as err:
        load_policy(dump(tmp_path, bad))
    return err.value


# ---------------------------------------------------------------- the real file

def test_real_file_loads_with_its_identity(policy):
    assert policy.id == "a1-slovenija-privacy-policy"
    assert policy.version == "2019-12-01"
    assert policy.operator.local_timezone == "Europe/Ljubljana"
    assert policy.operator.country_calling_code == "386"
    assert policy.operator.home_plmns == ("29340",)
    assert policy.k_anonymity == 10          # analytics.k_anonymity in the file
    assert policy.not_allowed_action == "dropped"


def test_allowed_columns_are_exactly_design_section_1(policy):
    assert policy.allowed_columns == DESIGN_CANONICAL
    assert len(policy.allowed_columns) == 26   # 18 items, 8 of which name two or three columns


def test_each_column_cites_its_numbered_item(policy):
    # DESIGN §1 numbers: item 4 is time+duration, item 9 location, item 17 charged value.
    assert policy.field("start_time").item == 4 and policy.field("duration_s").item == 4
    assert policy.field("cell_id").item == 9
    assert policy.field("currency").item == 17
    assert policy.field("tax_amount").item == 18
    assert sorted({f.item for f in policy.fields}) == list(range(1, 19))


def test_every_rule_has_a_clause(policy):
    assert all(f.clause.strip() for f in policy.fields)
    assert all(r.clause.strip() and r.legal_basis.strip() for r in policy.retention)
    assert policy.not_allowed_clause.strip() and policy.analytics_clause.strip()
    assert policy.field("imsi").clause == "§3.2 ¶3 item 10 (IMSI)"


def test_retention_figures_from_policy_section_5(policy):
    # DESIGN §3: roaming aggregates six months, invoices ten years, lawful interception thirty.
    assert policy.retention_for("roaming_aggregate").keep == Period(months=6)
    assert policy.retention_for("invoice").keep == Period(years=10)
    assert policy.retention_for("lawful_interception").keep == Period(years=30)
    assert policy.retention_for("authority_request_log").keep == Period(years=3)
    billing = policy.retention_for("billing_cdr")
    assert billing.action == "anonymize"
    assert dict(billing.limitation_periods) == {
        "consumer_services": Period(years=1), "business_services": Period(years=3), "general": Period(years=5)}
    assert len(policy.retention) == 9


def test_identifier_kinds_and_analytics_treatment(policy):
    assert {f.column for f in policy.fields if f.identifier == "msisdn"} == {
        "origin_number", "destination_number", "redirection_number"}
    assert policy.field("imei").analytics == "truncate_to_tac"
    assert policy.field("cell_id").analytics == "generalize_to_area"


def test_is_allowed_and_lookups(policy):
    assert policy.is_allowed("imsi")
    assert not policy.is_allowed("caller_name")
    assert not policy.is_allowed("record_id")   # lineage column, not a billing field
    with pytest.raises(KeyError):
        policy.field("email")
    with pytest.raises(KeyError):
        policy.retention_for("nothing")


def test_sha256_is_of_the_file_bytes(policy):
    assert policy.sha256 == hashlib.sha256(DEFAULT_POLICY.read_bytes()).hexdigest()


def test_sha256_changes_with_any_byte(tmp_path):
    path = tmp_path / "p.yaml"
    raw = DEFAULT_POLICY.read_bytes() + b"\n# a comment changes the bytes, not the rules\n"
    path.write_bytes(raw)
    p = load_policy(path)
    assert p.sha256 == hashlib.sha256(raw).hexdigest()
    assert p.sha256 != load_policy().sha256
    assert p.allowed_columns == DESIGN_CANONICAL


def test_round_trip_of_the_dict_still_loads(tmp_path, doc):
    # Guards the variant tests below: a failure there is the edit, not the dumping.
    assert load_policy(dump(tmp_path, doc)).allowed_columns == DESIGN_CANONICAL


@pytest.mark.parametrize("text, expected", [
    ("P6M", Period(months=6)), ("P10Y", Period(years=10)), ("P1Y6M15D", Period(1, 6, 15)), ("P0D", Period()),
])
def test_period_parse(text, expected):
    assert Period.parse(text, "k") == expected


# ---------------------------------------------------------------- broken variants

def test_missing_key(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["analytics"].pop("k_anonymity"))
    assert str(err) == "analytics.k_anonymity: missing"


def test_missing_nested_clause(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["retention"][1].pop("clause"))
    assert str(err) == "retention[1].clause: missing"


def test_empty_clause(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["billing_data"][3].__setitem__("clause", "  "))
    assert str(err) == "billing_data[3].clause: expected a non-empty string"


def test_wrong_type_k(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["analytics"].__setitem__("k_anonymity", "ten"))
    assert str(err).startswith("analytics.k_anonymity: ")
    assert "integer" in str(err) and "'ten'" in str(err)


def test_boolean_is_not_an_integer_k(tmp_path, doc):
    # YAML `yes`/`true` is a bool, and bool is an int subclass in Python: must still be refused.
    err = load_variant(tmp_path, doc, lambda d: d["analytics"].__setitem__("k_anonymity", True))
    assert str(err).startswith("analytics.k_anonymity: ")


@pytest.mark.parametrize("k", [1, 0, -3])
def test_k_below_two(tmp_path, doc, k):
    # k-anonymity with k = 1 releases single subscribers: the floor is 2.
    err = load_variant(tmp_path, doc, lambda d: d["analytics"].__setitem__("k_anonymity", k))
    assert str(err) == f"analytics.k_anonymity: expected an integer >= 2, got {k}"


def test_k_of_two_is_the_floor(tmp_path, doc):
    ok = copy.deepcopy(doc)
    ok["analytics"]["k_anonymity"] = 2
    assert load_policy(dump(tmp_path, ok)).k_anonymity == 2


def test_unknown_top_level_key(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d.__setitem__("retention_override", {"keep": "P99Y"}))
    assert str(err) == "policy file: unknown key(s): retention_override"


def test_unknown_nested_key(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["analytics"].__setitem__("k_anon", 3))
    assert str(err) == "analytics: unknown key(s): k_anon"


def test_unknown_column_attribute(tmp_path, doc):
    err = load_variant(tmp_path, doc,
                       lambda d: d["billing_data"][0]["columns"]["origin_number"].__setitem__("pii", False))
    assert str(err) == "billing_data[0].columns.origin_number: unknown key(s): pii"


def test_bad_iso_period(tmp_path, doc):
    # retention[2] is roaming_aggregate in the real file.
    assert doc["retention"][2]["category"] == "roaming_aggregate"
    err = load_variant(tmp_path, doc, lambda d: d["retention"][2].__setitem__("keep", "6 months"))
    assert str(err).startswith("retention[2].keep: ")
    assert "ISO-8601" in str(err) and "'6 months'" in str(err)


def test_bare_p_is_not_a_period(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["retention"][2].__setitem__("keep", "P"))
    assert str(err).startswith("retention[2].keep: ")


def test_bad_limitation_period(tmp_path, doc):
    err = load_variant(tmp_path, doc,
                       lambda d: d["retention"][0]["limitation_periods"].__setitem__("general", "5 years"))
    assert str(err).startswith("retention[0].limitation_periods.general: ")


def test_duplicate_retention_category(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["retention"][3].__setitem__("category", "roaming_aggregate"))
    assert str(err) == "retention: category listed twice: roaming_aggregate"


def test_duplicate_column_across_items(tmp_path, doc):
    # item 2 (billing_data[1]) also claims origin_number, which item 1 owns.
    err = load_variant(tmp_path, doc, lambda d: d["billing_data"][1]["columns"].__setitem__(
        "origin_number", {"type": "varchar", "analytics": "keep"}))
    assert str(err).startswith("billing_data[1].columns.origin_number: ")
    assert "twice" in str(err)


def test_column_clashing_with_lineage(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["billing_data"][1]["columns"].__setitem__(
        "record_id", {"type": "varchar", "analytics": "keep"}))
    assert str(err).startswith("billing_data[1].columns.record_id: ")


def test_duplicate_yaml_key_in_the_text(tmp_path):
    # A dict cannot hold a duplicate key, so this variant is made in the text: PyYAML would
    # silently keep the last `k_anonymity` (here 2) and drop the policy's 10.
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert text.count("  k_anonymity: 10\n") == 1
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace("  k_anonymity: 10\n", "  k_anonymity: 10\n  k_anonymity: 2\n"), encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "k_anonymity" in str(err.value) and "twice" in str(err.value)


def test_bad_column_type(tmp_path, doc):
    err = load_variant(tmp_path, doc,
                       lambda d: d["billing_data"][3]["columns"]["duration_s"].__setitem__("type", "integer"))
    assert str(err).startswith("billing_data[3].columns.duration_s.type: 'integer' is not one of ")


def test_bad_column_name(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["billing_data"][0]["columns"].__setitem__(
        "Origin-Number", {"type": "varchar", "analytics": "keep"}))
    assert str(err).startswith("billing_data[0].columns.Origin-Number: ")


def test_section_of_wrong_shape(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d.__setitem__("operator", ["Europe/Ljubljana"]))
    assert str(err) == "operator: expected a mapping"


def test_empty_retention_list(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d.__setitem__("retention", []))
    assert str(err) == "retention: expected a non-empty list"


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("policy:\n  id: x\n  title: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value).startswith(f"policy file {path}: not valid YAML")


def test_yaml_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value) == "policy file: expected a mapping"


def test_unreadable_path(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(PolicyError) as err:
        load_policy(missing)
    assert str(err.value) == f"policy file {missing}: cannot read (No such file or directory)"


def test_directory_is_unreadable(tmp_path):
    with pytest.raises(PolicyError) as err:
        load_policy(tmp_path)
    assert "cannot read" in str(err.value)


# ---------------------------------------------------------------- roaming fair use (§3.2 ¶4)

def test_roaming_rule_from_the_file(policy):
    from transforms.policy import DEFAULT_POLICY, RoamingRule

    rule = policy.roaming
    assert isinstance(rule, RoamingRule)
    assert rule.observation_window_months == 4           # Impl. Reg. 2016/2286 Art. 4: at least four months
    assert rule.long_inactivity_days == 90
    assert rule.clause.startswith("§3.2 ¶4")
    assert "2022/612" in rule.legal_basis and "531/2012" in rule.legal_basis and "2016/2286" in rule.legal_basis
    assert rule.reference_table == DEFAULT_POLICY.parent.parent / "reference" / "roaming_zones.csv"
    assert rule.reference_table.is_file()


def test_roaming_rule_is_frozen(policy):
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.roaming.observation_window_months = 1


@pytest.mark.parametrize("months", [3, 1, 0])
def test_roaming_window_below_four_months(tmp_path, doc, months):
    err = load_variant(tmp_path, doc, lambda d: d["roaming"].__setitem__("observation_window_months", months))
    assert str(err) == f"roaming.observation_window_months: expected an integer >= 4, got {months}"


def test_roaming_window_longer_than_four_months_loads(tmp_path, doc):
    ok = copy.deepcopy(doc)
    ok["roaming"]["observation_window_months"] = 6
    assert load_policy(dump(tmp_path, ok)).roaming.observation_window_months == 6


def test_roaming_window_not_an_integer(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["roaming"].__setitem__("observation_window_months", "four"))
    assert str(err).startswith("roaming.observation_window_months: ")


def test_roaming_missing_section(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d.pop("roaming"))
    assert str(err) == "roaming: missing"


@pytest.mark.parametrize("key", ["clause", "legal_basis", "long_inactivity_days", "reference_table"])
def test_roaming_missing_key(tmp_path, doc, key):
    err = load_variant(tmp_path, doc, lambda d: d["roaming"].pop(key))
    assert str(err) == f"roaming.{key}: missing"


def test_roaming_inactivity_must_fit_the_window(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["roaming"].__setitem__("long_inactivity_days", 112))
    assert str(err).startswith("roaming.long_inactivity_days: 112 does not fit inside a 4-month window")


def test_roaming_inactivity_not_positive(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["roaming"].__setitem__("long_inactivity_days", 0))
    assert str(err) == "roaming.long_inactivity_days: expected an integer >= 1, got 0"


def test_roaming_reference_table_must_exist(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["roaming"].__setitem__("reference_table", "reference/nope.csv"))
    assert str(err) == "roaming.reference_table: 'reference/nope.csv' is not a file in the repository"


def test_roaming_unknown_key(tmp_path, doc):
    err = load_variant(tmp_path, doc, lambda d: d["roaming"].__setitem__("window", 4))
    assert str(err) == "roaming: unknown key(s): window"

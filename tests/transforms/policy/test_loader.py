"""transforms/policy/loader.py: the real policy file loads; broken variants fail naming the key path and the
problem."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from tests.transforms.policy.conftest import dump, load_edited
from transforms.bundled import DEFAULT_POLICY, REPO_ROOT
from transforms.policy import (AggregateReleaseRule, AnonymousDataset, LatenessRule, Period, PolicyError, Reporting,
                               RoamingRule, load_policy)
from transforms.policy.loader import (GDPR_ANSWER_WITHIN, GDPR_EXTENSION_AT_MOST, MIN_OUTWEIGHS_SHARE,
                                      MIN_ROAMING_WINDOW_MONTHS)

# docs/design.md §1, the table of the §3.2 allowed billing-data list, written out by hand in its order.
CANONICAL_BY_HAND = (
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


KEPT_VARCHAR = {"type": "varchar", "analytics": "keep"}


def load_error(path) -> str:
    """The message of the PolicyError loading `path` raises."""
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    return str(err.value)


def setter(*path, value):
    """An edit that sets doc[path[0]]…[path[-1]] = value."""
    def edit(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return edit


# ---------------------------------------------------------------- the real file

def test_real_file_loads_with_its_identity(policy):
    assert policy.id == "a1-slovenija-privacy-policy"
    assert policy.version == "2019-12-01"
    assert policy.path == str(DEFAULT_POLICY)
    assert policy.operator.local_timezone == "Europe/Ljubljana"
    assert policy.operator.country_calling_code == "386"
    assert policy.operator.national_number_length == 8        # Slovenian numbering plan
    assert policy.operator.home_plmns == ("29340",)
    assert policy.operator.imsi_prefix == "29340"
    assert policy.k_anonymity == 10          # analytics.k_anonymity in the file
    assert policy.not_allowed_action == "dropped"


def test_load_policy_without_a_path_reads_the_bundled_file(policy):
    assert load_policy() == policy
    assert load_policy(str(DEFAULT_POLICY)) == policy


def test_allowed_columns_are_exactly_design_section_1(policy):
    assert policy.allowed_columns == CANONICAL_BY_HAND
    assert len(policy.allowed_columns) == 26   # 18 items, 8 of which name two or three columns


def test_each_column_cites_its_numbered_item(policy):
    # docs/design.md §1 numbers: item 4 is time+duration, item 9 location, item 17 charged value.
    assert policy.field("start_time").item == 4 and policy.field("duration_s").item == 4
    assert policy.field("cell_id").item == 9
    assert policy.field("currency").item == 17
    assert policy.field("tax_amount").item == 18
    assert sorted({f.item for f in policy.fields}) == list(range(1, 19))


def test_every_rule_has_a_clause(policy):
    assert all(f.clause.strip() for f in policy.fields)
    assert all(r.clause.strip() and r.legal_basis.strip() for r in policy.retention)
    assert policy.not_allowed_clause.strip() and policy.analytics_clause.strip()
    assert all(a.clause.strip() for a in policy.anonymous_datasets)
    assert policy.reporting.clause.strip()
    assert policy.lateness.clause.strip()
    assert policy.field("imsi").clause == "§3.2 ¶3 item 10 (IMSI)"


def test_retention_figures_from_policy_section_5(policy):
    # docs/design.md §3: roaming aggregates six months, invoices ten years, lawful interception thirty.
    assert policy.retention_for("roaming_aggregate").keep == Period(months=6)
    assert policy.retention_for("invoice").keep == Period(years=10)
    assert policy.retention_for("lawful_interception").keep == Period(years=30)
    assert policy.retention_for("authority_request_log").keep == Period(years=3)
    billing = policy.retention_for("billing_cdr")
    assert billing.action == "anonymize"
    assert billing.keep_until == "full_payment"
    assert dict(billing.limitation_periods) == {
        "consumer_services": Period(years=1), "business_services": Period(years=3), "general": Period(years=5)}
    # The consent register: kept while it stands, then as proof for the longest limitation period.
    register = policy.retention_for("consent_register")
    assert (register.datasets, register.anchor, register.keep) == (("consents",), "consent_superseded", Period(years=5))
    assert len(policy.retention) == 10


def test_identifier_kinds_and_analytics_treatment(policy):
    assert {f.column for f in policy.fields if f.identifier == "msisdn"} == {
        "origin_number", "destination_number", "redirection_number"}
    assert policy.field("imei").analytics == "truncate_to_tac"
    assert policy.field("cell_id").analytics == "generalize_to_area"


def test_anonymous_datasets_and_reporting_from_the_file(policy):
    assert policy.anonymous_datasets == (AnonymousDataset(
        "aggregates", "§3.3 ¶1 (aggregated: k-anonymous counts and sums, no personal data)"),)
    assert policy.reporting == Reporting("GDPR Art. 5(2) (accountability); §5 (retention periods)", (30, 90))


def test_sha256_is_of_the_file_bytes(policy):
    assert policy.sha256 == hashlib.sha256(DEFAULT_POLICY.read_bytes()).hexdigest()


def test_sha256_changes_with_any_byte(tmp_path):
    path = tmp_path / "p.yaml"
    raw = DEFAULT_POLICY.read_bytes() + b"\n# a comment changes the bytes, not the rules\n"
    path.write_bytes(raw)
    p = load_policy(path)
    assert p.sha256 == hashlib.sha256(raw).hexdigest()
    assert p.sha256 != load_policy().sha256
    assert p.allowed_columns == CANONICAL_BY_HAND


def test_round_trip_of_the_dict_still_loads(tmp_path, doc):
    # Guards the variant tests below: a failure there is the edit, not the dumping.
    assert load_policy(dump(tmp_path, doc)).allowed_columns == CANONICAL_BY_HAND


# ---------------------------------------------------------------- broken variants

def test_missing_key(load_variant):
    err = load_variant(lambda d: d["analytics"].pop("k_anonymity"))
    assert str(err) == "analytics.k_anonymity: missing"


def test_missing_nested_clause(load_variant):
    err = load_variant(lambda d: d["retention"][1].pop("clause"))
    assert str(err) == "retention[1].clause: missing"


def test_empty_clause(load_variant):
    err = load_variant(setter("billing_data", 3, "clause", value="  "))
    assert str(err) == "billing_data[3].clause: expected a non-empty string"


def test_wrong_type_k(load_variant):
    err = load_variant(setter("analytics", "k_anonymity", value="ten"))
    assert str(err).startswith("analytics.k_anonymity: ")
    assert "integer" in str(err) and "'ten'" in str(err)


def test_boolean_is_not_an_integer_k(load_variant):
    # YAML `yes`/`true` is a bool, and bool is an int subclass in Python: must still be refused.
    err = load_variant(setter("analytics", "k_anonymity", value=True))
    assert str(err).startswith("analytics.k_anonymity: ")


@pytest.mark.parametrize("k", [1, 0, -3])
def test_k_below_two(load_variant, k):
    # k-anonymity with k = 1 releases single subscribers: the floor is 2.
    err = load_variant(setter("analytics", "k_anonymity", value=k))
    assert str(err) == f"analytics.k_anonymity: expected an integer >= 2, got {k}"


def test_k_of_two_is_the_floor(tmp_path):
    assert load_edited(tmp_path, setter("analytics", "k_anonymity", value=2)).k_anonymity == 2


def test_release_tables_from_the_file(policy):
    # Coarse to fine, each within the one whose cells contain its cells (docs/design.md §4).
    assert [(t.name, t.by, t.within) for t in policy.release_tables] == [
        ("day_service", ("service_type",), None),
        ("day_area_service", ("service_type", "area"), "day_service"),
        ("hour_area_service", ("event_hour", "service_type", "area"), "day_area_service"),
        ("day_called_zone", ("service_type", "called_zone"), "day_service"),
        ("day_visited_zone", ("service_type", "visited_zone"), "day_service")]
    assert policy.ancestors_of("hour_area_service") == ("day_area_service", "day_service")
    assert all(t.clause.startswith("§3.3") for t in policy.release_tables)


def _tables(*tables):
    return setter("analytics", "release_tables", value=[{"clause": "§3.3", **t} for t in tables])


@pytest.mark.parametrize("tables, message", [
    ([{"name": "a", "by": ["service_type"]}, {"name": "a", "by": ["area"]}], "listed twice"),
    ([{"name": "a", "by": ["cell_id"]}], "'cell_id' is not one of"),
    ([{"name": "a", "by": ["called_zone", "called_country_code"]}], "with its own generalization"),
    # a parent must come first (so a cycle cannot be written) and be coarser
    ([{"name": "b", "by": ["service_type", "area"], "within": "a"}, {"name": "a", "by": ["service_type"]}],
     "not a release table listed before"),
    ([{"name": "a", "by": ["service_type"]}, {"name": "b", "by": ["service_type"], "within": "b"}],
     "not a release table listed before"),
    ([{"name": "a", "by": ["area"]}, {"name": "b", "by": ["service_type"], "within": "a"}], "is not coarser"),
    ([{"name": "a", "by": ["service_type"]}, {"name": "b", "by": ["service_type"], "within": "a"}],
     "is not coarser"),
    # a zone generalizes the country code, not the other way round
    ([{"name": "a", "by": ["called_country_code"]}, {"name": "b", "by": ["called_zone", "area"], "within": "a"}],
     "is not coarser"),
    # every containment must be declared: b holds a's cells but is not its ancestor
    ([{"name": "a", "by": ["service_type"]}, {"name": "b", "by": ["service_type", "area"]}], "contains b's cells"),
])
def test_release_tables_are_checked(load_variant, tables, message):
    assert message in str(load_variant(_tables(*tables)))


def test_a_zone_table_may_sit_above_a_country_code_table(tmp_path):
    policy = load_edited(tmp_path, _tables({"name": "a", "by": ["called_zone"]},
                                           {"name": "b", "by": ["called_country_code"], "within": "a"}))
    assert policy.release_columns("b") == ("called_country_code", "called_zone")


def test_unknown_top_level_key(load_variant):
    err = load_variant(setter("retention_override", value={"keep": "P99Y"}))
    assert str(err) == "policy file: unknown key(s): retention_override"


def test_unknown_nested_key(load_variant):
    err = load_variant(setter("analytics", "k_anon", value=3))
    assert str(err) == "analytics: unknown key(s): k_anon"


def test_unknown_column_attribute(load_variant):
    err = load_variant(setter("billing_data", 0, "columns", "origin_number", "pii", value=False))
    assert str(err) == "billing_data[0].columns.origin_number: unknown key(s): pii"


def test_bad_iso_period(doc, load_variant):
    # retention[2] is roaming_aggregate in the real file.
    assert doc["retention"][2]["category"] == "roaming_aggregate"
    err = load_variant(setter("retention", 2, "keep", value="6 months"))
    assert str(err).startswith("retention[2].keep: ")
    assert "ISO-8601" in str(err) and "'6 months'" in str(err)


def test_bare_p_is_not_a_period(load_variant):
    err = load_variant(setter("retention", 2, "keep", value="P"))
    assert str(err).startswith("retention[2].keep: ")


def test_bad_limitation_period(load_variant):
    err = load_variant(setter("retention", 0, "limitation_periods", "general", value="5 years"))
    assert str(err).startswith("retention[0].limitation_periods.general: ")


def test_duplicate_retention_category(load_variant):
    err = load_variant(setter("retention", 3, "category", value="roaming_aggregate"))
    assert str(err) == "retention: category listed twice: roaming_aggregate"


def test_a_data_set_in_two_retention_categories(doc, load_variant):
    # retention[1] is invoice; billing already belongs to billing_cdr: which period would apply?
    assert doc["retention"][1]["category"] == "invoice"
    err = load_variant(lambda d: d["retention"][1]["datasets"].append("billing"))
    assert str(err).startswith("retention")
    assert "billing" in str(err) and "two categories" in str(err)


def test_duplicate_column_across_items(load_variant):
    # item 2 (billing_data[1]) also claims origin_number, which item 1 owns.
    err = load_variant(setter("billing_data", 1, "columns", "origin_number", value=KEPT_VARCHAR))
    assert str(err).startswith("billing_data[1].columns.origin_number: ")
    assert "twice" in str(err)


def test_column_clashing_with_lineage(load_variant):
    err = load_variant(setter("billing_data", 1, "columns", "record_id", value=KEPT_VARCHAR))
    assert str(err).startswith("billing_data[1].columns.record_id: ")


def test_duplicate_yaml_key_in_the_text(tmp_path):
    # A dict cannot hold a duplicate key, so this variant is made in the text: PyYAML would
    # silently keep the last `k_anonymity` (here 2) and drop the policy's 10.
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert text.count("  k_anonymity: 10\n") == 1
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace("  k_anonymity: 10\n", "  k_anonymity: 10\n  k_anonymity: 2\n"), encoding="utf-8")
    message = load_error(path)
    assert "k_anonymity" in message and "twice" in message


def test_bad_column_type(load_variant):
    err = load_variant(setter("billing_data", 3, "columns", "duration_s", "type", value="integer"))
    assert str(err).startswith("billing_data[3].columns.duration_s.type: 'integer' is not one of ")


def test_bad_column_name(load_variant):
    err = load_variant(setter("billing_data", 0, "columns", "Origin-Number", value=KEPT_VARCHAR))
    assert str(err).startswith("billing_data[0].columns.Origin-Number: ")


def test_section_of_wrong_shape(load_variant):
    err = load_variant(setter("operator", value=["Europe/Ljubljana"]))
    assert str(err) == "operator: expected a mapping"


def test_empty_retention_list(load_variant):
    err = load_variant(setter("retention", value=[]))
    assert str(err) == "retention: expected a non-empty list"


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("policy:\n  id: x\n  title: [unclosed\n", encoding="utf-8")
    assert load_error(path).startswith(f"policy file {path}: not valid YAML")


def test_yaml_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    assert load_error(path) == "policy file: expected a mapping"


def test_unreadable_path(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    assert load_error(missing) == f"policy file {missing}: cannot read (No such file or directory)"


def test_directory_is_unreadable(tmp_path):
    assert "cannot read" in load_error(tmp_path)


# ---------------------------------------------------------------- operator: numbering plan

@pytest.mark.parametrize("cc, nsn", [("386", 8), ("386", 12), ("1", 14), ("44", 10)])
def test_national_number_length_within_e164(tmp_path, cc, nsn):
    # E.164: at most 15 digits, the country code included.
    p = load_edited(tmp_path, lambda d: d["operator"].update(country_calling_code=cc, national_number_length=nsn))
    assert (p.operator.country_calling_code, p.operator.national_number_length) == (cc, nsn)


@pytest.mark.parametrize("cc, nsn", [("386", 13), ("1", 15), ("44", 14)])
def test_national_number_length_beyond_e164_is_refused(load_variant, cc, nsn):
    err = load_variant(lambda d: d["operator"].update(country_calling_code=cc, national_number_length=nsn))
    assert str(err).startswith("operator.national_number_length: ")
    assert str(nsn) in str(err) and cc in str(err) and "15" in str(err)


@pytest.mark.parametrize("value", [3, 0, "8", True, 8.5])
def test_national_number_length_not_a_count_of_digits(load_variant, value):
    err = load_variant(setter("operator", "national_number_length", value=value))
    assert str(err).startswith("operator.national_number_length: expected an integer >= 4")


def test_national_number_length_missing(load_variant):
    err = load_variant(lambda d: d["operator"].pop("national_number_length"))
    assert str(err) == "operator.national_number_length: missing"


# ---------------------------------------------------------------- anonymous data sets

def test_an_anonymous_data_set_with_a_retention_category_is_refused(load_variant):
    # A retention category says the data set holds personal data; it cannot be anonymous as well.
    err = load_variant(setter("anonymous_datasets", 0, "dataset", value="roaming"))
    assert str(err).startswith("anonymous_datasets[0].dataset: ")
    assert "'roaming'" in str(err)


def test_a_second_anonymous_data_set_loads(tmp_path):
    p = load_edited(tmp_path, lambda d: d["anonymous_datasets"].append({"dataset": "network_kpis", "clause": "§3.3"}))
    assert p.is_anonymous("network_kpis") and p.is_anonymous("aggregates")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["anonymous_datasets"][0].pop("clause"), "anonymous_datasets[0].clause: missing"),
    (lambda d: d["anonymous_datasets"][0].update(keep="P1Y"), "anonymous_datasets[0]: unknown key(s): keep"),
    (lambda d: d.pop("anonymous_datasets"), "anonymous_datasets: missing"),
])
def test_anonymous_datasets_shape(load_variant, edit, message):
    assert str(load_variant(edit)) == message


def test_anonymous_data_set_name_is_lower_snake_case(load_variant):
    err = load_variant(setter("anonymous_datasets", 0, "dataset", value="Aggregates"))
    assert str(err).startswith("anonymous_datasets[0].dataset: 'Aggregates' does not match")


# ---------------------------------------------------------------- reporting horizons

def test_other_reporting_horizons_load(tmp_path):
    p = load_edited(tmp_path, setter("reporting", "retention_due_within_days", value=[7, 30, 365]))
    assert p.reporting.retention_due_within_days == (7, 30, 365)


@pytest.mark.parametrize("horizons", [[90, 30], [30, 30, 90], [30, 90, 60]])
def test_reporting_horizons_unsorted_or_repeated_are_refused(load_variant, horizons):
    err = load_variant(setter("reporting", "retention_due_within_days", value=horizons))
    assert str(err).startswith("reporting.retention_due_within_days: ")


@pytest.mark.parametrize("horizons", [[], [0, 30], ["30"], 30, [True]])
def test_reporting_horizons_are_whole_days_from_one(load_variant, horizons):
    err = load_variant(setter("reporting", "retention_due_within_days", value=horizons))
    assert str(err).startswith("reporting.retention_due_within_days: expected a non-empty list of integers >= 1")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("reporting"), "reporting: missing"),
    (lambda d: d["reporting"].pop("clause"), "reporting.clause: missing"),
    (lambda d: d["reporting"].update(horizon=30), "reporting: unknown key(s): horizon"),
])
def test_reporting_shape(load_variant, edit, message):
    assert str(load_variant(edit)) == message


# ---------------------------------------------------------------- lateness window (docs/design.md §9)

def test_lateness_window_from_the_file(policy):
    # As shipped: rows dated more than a week before the night count as late.
    assert policy.lateness == LatenessRule(
        "GDPR Art. 5(1)(d), 5(2) (accuracy, accountability); §3.2 ¶3 item 4 (time of the communication)", 7)


def test_aggregate_release_window_from_the_file(policy):
    # As shipped: a day is released by the run of the third night after it (docs/design.md §4).
    assert policy.aggregate_release == AggregateReleaseRule(
        "§3.3 ¶1 (aggregated: each figure released once, so no two versions differ by fewer than k subscribers)", 3)


# Both windows are days counted back from a night: 0 is a window too, a negative one is refused.
WINDOWS = ("lateness", "aggregate_release")


@pytest.mark.parametrize("section", WINDOWS)
@pytest.mark.parametrize("days", [0, 1, 30])
def test_windows_from_zero_load(tmp_path, section, days):
    assert getattr(load_edited(tmp_path, setter(section, "window_days", value=days)), section).window_days == days


@pytest.mark.parametrize("section", WINDOWS)
@pytest.mark.parametrize("days", [-1, -7, "7", 7.5, True])
def test_a_negative_or_non_integer_window_is_refused(load_variant, section, days):
    err = load_variant(setter(section, "window_days", value=days))
    assert str(err).startswith(f"{section}.window_days: expected an integer >= 0")


@pytest.mark.parametrize("section", WINDOWS)
@pytest.mark.parametrize("edit, message", [
    (lambda d, s: d.pop(s), "{s}: missing"),
    (lambda d, s: d[s].pop("clause"), "{s}.clause: missing"),
    (lambda d, s: d[s].pop("window_days"), "{s}.window_days: missing"),
    (lambda d, s: d[s].update(grace_days=3), "{s}: unknown key(s): grace_days"),
])
def test_window_shape(load_variant, section, edit, message):
    assert str(load_variant(lambda d: edit(d, section))) == message.format(s=section)


def test_lateness_rule_is_frozen(policy):
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.lateness.window_days = 30


# ---------------------------------------------------------------- roaming fair use (§3.2 ¶4)

def test_roaming_rule_from_the_file(policy):
    rule = policy.roaming
    assert isinstance(rule, RoamingRule)
    assert rule.observation_window_months == 4           # Impl. Reg. 2016/2286 Art. 4: at least four months
    assert rule.long_inactivity_days == 90
    assert rule.presence_share_above == 0.5 and rule.consumption_share_above == 0.5   # "outweighs": over half
    assert rule.clause.startswith("§3.2 ¶4")
    assert "2022/612" in rule.legal_basis and "531/2012" in rule.legal_basis and "2016/2286" in rule.legal_basis
    assert rule.reference_table == DEFAULT_POLICY.parent.parent / "reference" / "roaming_zones.csv"
    assert rule.reference_table == REPO_ROOT / "reference" / "roaming_zones.csv"
    assert rule.reference_table.is_file()


def test_the_regulations_floors():
    # Impl. Reg. 2016/2286 Art. 4: at least four months; "outweighs" is more than half at the least.
    assert (MIN_ROAMING_WINDOW_MONTHS, MIN_OUTWEIGHS_SHARE) == (4, 0.5)


def test_roaming_rule_is_frozen(policy):
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.roaming.observation_window_months = 1


@pytest.mark.parametrize("months", [3, 1, 0])
def test_roaming_window_below_four_months(load_variant, months):
    err = load_variant(setter("roaming", "observation_window_months", value=months))
    assert str(err) == f"roaming.observation_window_months: expected an integer >= 4, got {months}"


def test_roaming_window_longer_than_four_months_loads(tmp_path):
    p = load_edited(tmp_path, setter("roaming", "observation_window_months", value=6))
    assert p.roaming.observation_window_months == 6


def test_roaming_window_not_an_integer(load_variant):
    err = load_variant(setter("roaming", "observation_window_months", value="four"))
    assert str(err).startswith("roaming.observation_window_months: ")


def test_roaming_missing_section(load_variant):
    err = load_variant(lambda d: d.pop("roaming"))
    assert str(err) == "roaming: missing"


@pytest.mark.parametrize("key", ["clause", "legal_basis", "long_inactivity_days", "reference_table",
                                 "presence_share_above", "consumption_share_above"])
def test_roaming_missing_key(load_variant, key):
    err = load_variant(lambda d: d["roaming"].pop(key))
    assert str(err) == f"roaming.{key}: missing"


def test_roaming_inactivity_must_fit_the_window(load_variant):
    # 4 months of at least 28 days: 112 days do not fit, 111 do.
    err = load_variant(setter("roaming", "long_inactivity_days", value=112))
    assert str(err).startswith("roaming.long_inactivity_days: 112 does not fit inside a 4-month window")


def test_roaming_inactivity_just_inside_the_window_loads(tmp_path):
    p = load_edited(tmp_path, setter("roaming", "long_inactivity_days", value=111))
    assert p.roaming.long_inactivity_days == 111


def test_roaming_inactivity_not_positive(load_variant):
    err = load_variant(setter("roaming", "long_inactivity_days", value=0))
    assert str(err) == "roaming.long_inactivity_days: expected an integer >= 1, got 0"


def test_roaming_reference_table_must_exist(load_variant):
    err = load_variant(setter("roaming", "reference_table", value="reference/nope.csv"))
    assert str(err) == "roaming.reference_table: 'reference/nope.csv' is not a file in the repository"


def test_roaming_unknown_key(load_variant):
    err = load_variant(setter("roaming", "window", value=4))
    assert str(err) == "roaming: unknown key(s): window"


@pytest.mark.parametrize("key", ["presence_share_above", "consumption_share_above"])
@pytest.mark.parametrize("share", [0.5, 0.6, 0.99])
def test_outweighs_shares_from_one_half_up_to_one_load(tmp_path, key, share):
    p = load_edited(tmp_path, setter("roaming", key, value=share))
    assert getattr(p.roaming, key) == share


@pytest.mark.parametrize("key", ["presence_share_above", "consumption_share_above"])
@pytest.mark.parametrize("share", [0.49, 0, -0.5, 1, 1.0, 1.5, "0.6", True])
def test_outweighs_shares_below_one_half_or_from_one_are_refused(load_variant, key, share):
    # Below one half, an even or smaller share would "outweigh"; at 1 or more no subscriber ever could.
    err = load_variant(setter("roaming", key, value=share))
    assert str(err).startswith(f"roaming.{key}: ")
    assert repr(share) in str(err)



# ---------------------------------------------------------------- access (who may read each zone)

def test_access_from_the_file(policy):
    from transforms.lake.zones import ZONE_NAMES

    access = policy.access
    assert access.clause.startswith("§4 last ¶") and "annex 1.3" in access.clause
    assert {g.role: g.unix_group for g in access.groups} == {"analysts": "cdr-analytics",
                                                             "marketers": "cdr-marketing",
                                                             "compliance": "cdr-compliance"}
    assert sorted(z.zone for z in access.zones) == sorted(ZONE_NAMES)      # in the policy's order
    by = {z.zone: z for z in access.zones}
    assert {z for z, a in by.items() if a.access == "owner"} == {"billing", "invoices", "quarantine", "consents"}
    assert {z: a.group.role for z, a in by.items() if a.group} == {
        "analytics": "analysts", "aggregates": "analysts", "roaming": "analysts", "marketing": "marketers",
        "audit": "compliance", "reports": "compliance"}
    assert access.work.access == "owner" and access.work.group is None
    assert all(z.clause.strip() for z in (*access.zones, access.work)) and all(g.clause for g in access.groups)
    assert access.of("audit").group.unix_group == "cdr-compliance"
    with pytest.raises(KeyError):
        access.of("landing")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["access"]["zones"].pop("consents"), "access.zones: no access declared for zone(s): consents"),
    (lambda d: d["access"]["zones"].update(landing={"access": "owner", "clause": "x"}),
     "access.zones: unknown zone(s): landing"),
    (lambda d: d["access"]["zones"]["billing"].update(access="everyone"), "access.zones.billing.access: 'everyone'"),
    (lambda d: d["access"]["zones"]["analytics"].pop("group"), "access.zones.analytics.group: a group zone names"),
    (lambda d: d["access"]["zones"]["billing"].update(group="analysts"), "access.zones.billing.group: an owner zone"),
    (lambda d: d["access"]["zones"]["audit"].update(group="auditors"),
     "access.zones.audit.group: 'auditors' is not a role"),
    (lambda d: d["access"]["zones"]["audit"].pop("clause"), "access.zones.audit.clause: missing"),
    (lambda d: d["access"]["zones"]["audit"].update(mode="0644"), "access.zones.audit: unknown key(s): mode"),
    (lambda d: d["access"]["groups"]["analysts"].update(unix_group="CDR Analytics"), "access.groups.analysts.unix_group"),
    (lambda d: d["access"]["groups"]["analysts"].pop("clause"), "access.groups.analysts.clause: missing"),
    (lambda d: d["access"]["work"].update(access="group", group="analysts"), "access.work.access: "),
    (lambda d: d["access"].pop("clause"), "access.clause: missing"),
    (lambda d: d.pop("access"), "access: missing"),
])
def test_access_is_checked(load_variant, edit, message):
    assert message in str(load_variant(edit))


def test_another_group_name_loads(tmp_path):
    p = load_edited(tmp_path, lambda d: d["access"]["groups"]["analysts"].update(unix_group="bi_readers"))
    assert p.access.of("aggregates").group.unix_group == "bi_readers"


# ---------------------------------------------------------------- consent (§3.4)

def test_consent_from_the_file(policy):
    consent = policy.consent
    assert consent.clause.startswith("§3.4") and consent.latest_counts.startswith("§3.4 ¶3")
    assert consent.purpose_names == ("marketing_contact", "marketing_profiling", "value_added_services",
                                     "partner_offers")
    # §6.6: an objection to direct marketing withdraws these; value-added services are not marketing.
    assert consent.direct_marketing_purposes == ("marketing_contact", "marketing_profiling", "partner_offers")
    assert consent.profiling_purpose == "marketing_profiling"
    assert {"self_care_app", "self_care_web", "contact_centre", "point_of_sale"} <= set(consent.channels)
    # The answers' own channel (§6.3, §6.6), apart from every channel an extract may deliver.
    assert consent.request_channel == "subject_request" and consent.request_channel not in consent.channels
    assert consent.request_channel_clause.startswith("§6.3, §6.6")
    assert all(p.clause.startswith("§3.4") for p in consent.purposes)
    with pytest.raises(KeyError):
        consent.purpose("telepathy")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["consent"]["purposes"].clear(), "consent.purposes: declare at least one purpose"),
    (lambda d: d["consent"]["purposes"].update({"Bad Name": {"clause": "x", "direct_marketing": True}}),
     "lower_snake_case"),
    (lambda d: d["consent"]["purposes"]["partner_offers"].update(direct_marketing="yes"),
     "consent.purposes.partner_offers.direct_marketing: expected true or false"),
    (lambda d: d["consent"]["purposes"]["partner_offers"].update(direct_marketing=1), "expected true or false"),
    (lambda d: d["consent"]["purposes"]["partner_offers"].pop("clause"), "consent.purposes.partner_offers.clause"),
    (lambda d: d["consent"].update(channels=["email", "email"]), "consent.channels: list each channel once"),
    (lambda d: d["consent"].update(profiling_purpose="newsletters"), "consent.profiling_purpose: 'newsletters'"),
    (lambda d: d["consent"].update(extra=1), "consent: unknown key(s): extra"),
    (lambda d: d["consent"]["request_channel"].update(channel="contact_centre"),
     "consent.request_channel.channel: 'contact_centre' is one of consent.channels"),
    (lambda d: d["consent"]["request_channel"].update(channel="Subject Request"), "does not match"),
    (lambda d: d["consent"]["request_channel"].pop("clause"), "consent.request_channel.clause"),
    (lambda d: d["consent"]["request_channel"].update(via="x"), "consent.request_channel: unknown key(s): via"),
    (lambda d: d["consent"].pop("request_channel"), "consent.request_channel: missing"),
    (lambda d: d.pop("consent"), "consent: missing"),
])
def test_consent_is_checked(load_variant, edit, message):
    assert message in str(load_variant(edit))


# ---------------------------------------------------------------- subject_rights (§6 ¶1)

def test_subject_rights_from_the_file(policy):
    rules = policy.subject_rights
    assert rules.clause.startswith("§6 ¶1") and "Art. 12(3)" in rules.legal_basis
    # §6 ¶1: "v enem mesecu po prejemu zahteve" ... "podaljša za največ dva dodatna meseca".
    assert (rules.answer_within, rules.extension_at_most) == (Period(months=1), Period(months=2))
    assert rules.due_soon_within_days == 7
    # §6's list of rights, in its order, each with its paragraph 6.1-6.6.
    assert [(r.right, r.clause[:4]) for r in rules.rights] == [
        ("access", "§6.1"), ("rectification", "§6.2"), ("erasure", "§6.3"), ("restriction", "§6.4"),
        ("portability", "§6.5"), ("objection", "§6.6")]


@pytest.mark.parametrize("answer, extension", [("P1M", "P0D"), ("P28D", "P2M"), ("P14D", "P1M15D"), ("P1M", "P59D")])
def test_shorter_periods_than_the_regulations_load(tmp_path, answer, extension):
    p = load_edited(tmp_path, lambda d: d["subject_rights"].update(answer_within=answer, extension_at_most=extension))
    assert (str(p.subject_rights.answer_within), str(p.subject_rights.extension_at_most)) == (answer, extension)


@pytest.mark.parametrize(("edit", "message"), [
    # GDPR Art. 12(3): one month, two further months at most; 29 or 31 days overrun some month.
    (setter("subject_rights", "answer_within", value="P2M"), "subject_rights.answer_within: P2M is longer than"),
    (setter("subject_rights", "answer_within", value="P29D"), "subject_rights.answer_within: P29D is longer than"),
    (setter("subject_rights", "answer_within", value="P1M1D"), "subject_rights.answer_within: P1M1D is longer"),
    (setter("subject_rights", "answer_within", value="P0D"), "subject_rights.answer_within: a request needs some"),
    (setter("subject_rights", "answer_within", value="one month"), "subject_rights.answer_within: expected an ISO"),
    (setter("subject_rights", "extension_at_most", value="P3M"), "subject_rights.extension_at_most: P3M is longer"),
    (setter("subject_rights", "extension_at_most", value="P62D"), "subject_rights.extension_at_most: P62D is longer"),
    (setter("subject_rights", "due_soon_within_days", value=0), "subject_rights.due_soon_within_days: expected an"),
    (lambda d: d["subject_rights"]["rights"].pop("portability"),
     "subject_rights.rights: no clause for right(s): portability"),
    (lambda d: d["subject_rights"]["rights"].update(complaint={"clause": "§7"}),
     "subject_rights.rights: unknown right(s): complaint"),
    (lambda d: d["subject_rights"]["rights"]["access"].pop("clause"), "subject_rights.rights.access.clause: missing"),
    (lambda d: d["subject_rights"]["rights"]["access"].update(within="P1M"),
     "subject_rights.rights.access: unknown key(s): within"),
    (lambda d: d["subject_rights"].update(answer_by="P1M"), "subject_rights: unknown key(s): answer_by"),
    (lambda d: d["subject_rights"].pop("legal_basis"), "subject_rights.legal_basis: missing"),
    (lambda d: d.pop("subject_rights"), "subject_rights: missing"),
])
def test_subject_rights_are_checked(load_variant, edit, message):
    assert message in str(load_variant(edit))


def test_the_regulations_ceilings():
    assert (GDPR_ANSWER_WITHIN, GDPR_EXTENSION_AT_MOST) == (Period(months=1), Period(months=2))

"""transforms/policy/model.py: the questions steps ask the policy, answered from the real file's rules."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from transforms.policy import LINEAGE_COLUMNS, RECORD_ID, Period


def without_billing(policy):
    """The policy with no retention category for the billing data set."""
    return dataclasses.replace(policy, retention=tuple(r for r in policy.retention if "billing" not in r.datasets))


def test_is_allowed_and_lookups(policy):
    assert policy.is_allowed("imsi")
    assert not policy.is_allowed("caller_name")
    assert not policy.is_allowed("record_id")   # lineage column, not a billing field
    with pytest.raises(KeyError):
        policy.field("email")
    with pytest.raises(KeyError):
        policy.retention_for("nothing")


def test_lineage_columns():
    assert LINEAGE_COLUMNS == ("record_id", "source_file_sha256", "source_row", "run_id", "event_date")
    assert RECORD_ID == "record_id"


def test_claim_types_are_the_billing_categorys_limitation_periods(policy):
    # §5 ¶1-2: one limitation period per claim type; a payments extract names one per invoice.
    assert policy.claim_types == ("consumer_services", "business_services", "general")


def test_billing_retention_is_the_category_holding_billing(policy):
    rule = policy.billing_retention
    assert rule.category == "billing_cdr"
    assert rule.datasets == ("billing", "quarantine")
    assert rule.keep == Period(years=1) and rule.anchor == "end_of_billing_period"


def test_without_a_billing_category_the_billing_questions_fail_loudly(policy):
    other = without_billing(policy)
    with pytest.raises(KeyError, match="billing"):
        other.billing_retention
    with pytest.raises(KeyError):
        other.claim_types


@pytest.mark.parametrize("dataset, category", [
    ("billing", "billing_cdr"), ("quarantine", "billing_cdr"), ("invoices", "invoice"),
    ("roaming", "roaming_aggregate"), ("analytics", "analytics_pseudonymized"),
    ("marketing", "consent_marketing"),
])
def test_retention_of_a_data_set(policy, dataset, category):
    assert policy.retention_of(dataset).category == category
    assert policy.retention_of(dataset) == policy.retention_for(category)


@pytest.mark.parametrize("dataset", ["aggregates", "reports", "audit", "billing_cdr", ""])
def test_retention_of_a_data_set_without_a_category(policy, dataset):
    assert policy.retention_of(dataset) is None


def test_personal_datasets_in_catalog_order(policy):
    assert policy.personal_datasets == (
        "billing", "quarantine", "invoices", "roaming", "analytics", "fraud_history", "authority_requests",
        "life_body_register", "lawful_interception", "marketing")


def test_is_anonymous(policy):
    assert policy.is_anonymous("aggregates")
    for dataset in policy.personal_datasets:
        assert not policy.is_anonymous(dataset)
    assert not policy.is_anonymous("unknown")


def test_subject_identifier_columns(policy):
    # Numbers, IMSI and IMEI point at one subscriber; a cell id names a place, not a person.
    assert policy.subject_identifier_columns == (
        "origin_number", "destination_number", "redirection_number", "imsi", "imei")
    assert policy.field("imsi").identifies_subject and policy.field("imei").identifies_subject
    assert not policy.field("cell_id").identifies_subject
    assert not policy.field("duration_s").identifies_subject


@pytest.mark.parametrize("treatment, columns", [
    ("tokenize", ("origin_number", "destination_number", "redirection_number", "imsi")),
    ("truncate_to_hour", ("start_time",)),
    ("truncate_to_tac", ("imei",)),
    ("generalize_to_area", ("cell_id",)),
    ("drop", ("location_area",)),
    ("no_such_treatment", ()),
])
def test_columns_treated(policy, treatment, columns):
    assert policy.columns_treated(treatment) == columns


def test_columns_treated_cover_every_column_once(policy):
    treatments = {f.analytics for f in policy.fields}
    treated = [c for t in treatments for c in policy.columns_treated(t)]
    assert sorted(treated) == sorted(policy.allowed_columns)
    assert len(policy.columns_treated("keep")) == 18      # 26 less 4 tokenized, 4 truncated, generalized or dropped


@pytest.mark.parametrize("claim_type, period", [
    ("consumer_services", Period(years=1)), ("business_services", Period(years=3)), ("general", Period(years=5)),
    (None, Period(years=1)),            # no claim type: the category's own `keep`
])
def test_period_for_a_claim_type(policy, claim_type, period):
    assert policy.billing_retention.period_for(claim_type) == period


def test_due_on_is_the_day_after_the_period_ends(policy):
    # Kept through anchor + period; due (must be gone) the next day.
    billing = policy.billing_retention
    assert billing.due_on(date(2026, 1, 31)) == date(2027, 2, 1)
    assert billing.due_on(date(2026, 1, 31), "business_services") == date(2029, 2, 1)
    assert billing.due_on(date(2027, 2, 28), "general") == date(2032, 2, 29)      # 28 Feb 2032 + 1 day
    roaming = policy.retention_of("roaming")
    assert roaming.due_on(date(2026, 8, 31)) == date(2027, 3, 1)                  # 28 Feb 2027 + 1 day
    assert roaming.due_on(date(2026, 8, 31), "general") == date(2027, 3, 1)     # no limitation periods here


def test_the_policy_is_frozen(policy):
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.k_anonymity = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.fields[0].analytics = "keep"

"""The landing formats' names and column lists, as the ingest reads them: from the built-in format files
(formats/*.yaml) and the policy's canonical columns.

This is the generator's one import from transforms: the other modules take the formats from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.bundled import BUILTIN_FORMATS
from transforms.formats import load_format
from transforms.policy import load_policy
from transforms.steps.consents import CONSENT_COLUMNS, CONSENTS_PROFILE
from transforms.steps.payments import PAYMENTS_COLUMNS, PAYMENTS_PROFILE


@dataclass(frozen=True)
class Layout:
    """A format's name and its columns in file order."""

    name: str
    columns: tuple[str, ...]


_POLICY = load_policy()
CANONICAL_COLUMNS = _POLICY.allowed_columns
# The consent extract's purposes and channels (policy `consent`).
CONSENT_PURPOSES, CONSENT_CHANNELS = _POLICY.consent.purpose_names, _POLICY.consent.channels


def _layout(name: str) -> Layout:
    fmt = load_format(BUILTIN_FORMATS / f"{name}.yaml", _POLICY)
    return Layout(fmt.name, fmt.columns or CANONICAL_COLUMNS)


ASTERISK_18, FREESWITCH, MEDIATION = (_layout(n) for n in ("asterisk_master_18", "freeswitch_cdr_csv",
                                                           "mediation_3gpp_csv"))
CANONICAL, CANONICAL_PARQUET = _layout("canonical_csv"), _layout("canonical_parquet")
# The packet-switched export reads its columns from the header: the generator writes the ASN.1 field names
# the format maps (and those it only reads to decide), then off-list ones it lists under not_allowed, in
# the records' field order; tests/sample_data/generate/test_ts32298_ps.py holds the two lists together.
TS32298_PS = Layout(_layout("ts32298_ps").name, (
    "recordType", "servedIMSI", "chargingID", "accessPointNameNI", "servedPDPPDNAddress", "recordOpeningTime",
    "duration", "causeForRecClosing", "nodeID", "servedMSISDN", "servingNodePLMNIdentifier", "servedIMEISV",
    "rATType", "locationAreaCode", "cellIdentifier", "dataVolumeGPRSUplink", "dataVolumeGPRSDownlink",
    "subscriberName",
))

__all__ = [
    "ASTERISK_18", "BILLING_CSV_COLUMNS", "CANONICAL", "CANONICAL_COLUMNS", "CANONICAL_PARQUET",
    "CONSENT_CHANNELS", "CONSENT_COLUMNS", "CONSENT_PURPOSES", "CONSENTS_PROFILE", "FREESWITCH", "HOSTILE_COLUMNS", "MEDIATION", "PAYMENTS_COLUMNS", "PAYMENTS_PROFILE", "TS32298_PS",
]

# Canonical CSV as a billing/CRM export: canonical columns plus off-list ones
# (docs/design.md §1: names, e-mail, IP addresses are never kept) between them.
BILLING_CSV_COLUMNS = (
    "origin_number", "caller_name", "email", *CANONICAL_COLUMNS[1:10], "ip_address", *CANONICAL_COLUMNS[10:],
)
# Column names of the hostile-header file: SQL-ish, newline-ish, very long.
HOSTILE_COLUMNS = ('x"; DROP TABLE runs; --', "remark\u2028line\u0085break", "very_long_" + "column_" * 700)

"""Source profiles: how each extract family maps onto the canonical columns.

A profile names the columns of one export format and says,
per canonical billing column, which source column(s) feed it. Source columns
are addressed by name inside the profile; at read time they are bound to
positional identifiers (``c0``, ``c1`` …) the pipeline makes itself, so no
text from an input file is ever spliced into SQL.

Classification of a source column (docs/design.md §1):
* ``allowed``      — the profile maps it to a canonical billing column;
* ``not_allowed``  — a known column of the format that is off the §3.2 list;
* ``unknown``      — the profile does not know it (treated as not allowed).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, replace

# Time expressions: {v} is the source column, ? binds the operator time zone.
UTC_TEXT = "strftime(timezone('UTC', {ts}), '%Y-%m-%d %H:%M:%S')"
ISO_TIME = "TRY_CAST({v} AS TIMESTAMPTZ)"
LOCAL_TIME = (
    "timezone($local_tz, try_strptime({v}, "
    "['%Y-%m-%d %H:%M:%S', '%Y/%m/%d %H:%M', '%Y/%m/%d %H:%M:%S', '%d.%m.%Y %H:%M:%S']))"
)


@dataclass(frozen=True)
class Profile:
    """One extract family: its columns and how they feed canonical columns."""

    name: str
    header: bool
    columns: tuple[str, ...] = ()
    # canonical column -> SQL expression over {source names}; a bare source
    # name means "as-is". Values stay VARCHAR here; validate casts them.
    mapping: dict[str, str] = field(default_factory=dict)
    # canonical columns whose values are read as local time without a zone
    time_expr: str = ISO_TIME
    # known off-list columns of this format (classified not_allowed)
    known_not_allowed: frozenset[str] = frozenset()

    def source_columns_used(self) -> set[str]:
        used: set[str] = set()
        for expr in self.mapping.values():
            used.update(re.findall(r"\{(\w+)\}", expr))
        return used


def _identity(cols: tuple[str, ...]) -> dict[str, str]:
    return {c: "{%s}" % c for c in cols}


CANONICAL_COLUMNS = (
    "origin_number", "destination_number", "direction", "start_time", "duration_s", "service_type",
    "redirection_number", "data_volume_bytes", "data_rate_kbps", "apn", "free_units_used", "cell_id",
    "location_area", "imsi", "imei", "origin_network", "termination_network", "service_area",
    "origin_country_code", "called_country_code", "tariff_code", "unit_price", "charged_amount",
    "discount_amount", "currency", "tax_amount",
)

# Off-list names seen in real exports; anything else unknown.
COMMON_NOT_ALLOWED = frozenset({
    "caller_name", "caller_id_name", "name", "full_name", "email", "e_mail", "ip_address", "ip",
    "ms_ip", "server_ip", "address", "postal_address", "notes", "note", "userfield", "free_text",
    "account_code", "accountcode", "pin", "latitude", "longitude", "message", "content", "url",
})

CANONICAL = Profile(
    name="canonical_csv",
    header=True,
    columns=CANONICAL_COLUMNS,
    mapping=_identity(CANONICAL_COLUMNS),
    known_not_allowed=COMMON_NOT_ALLOWED,
)

# The same columns delivered as Parquet: only the reader differs.
CANONICAL_PARQUET = replace(CANONICAL, name="canonical_parquet")

_ASTERISK_18 = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
    "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield",
)
_ASTERISK_MAPPING = {
    "origin_number": "{src}",
    "destination_number": "{dst}",
    # dcontext is read only to tell the direction; its value is not kept.
    "direction": "CASE WHEN lower({dcontext}) IN ('from-pstn', 'from-trunk', 'incoming', 'inbound', 'from-external')"
                 " THEN 'incoming' ELSE 'outgoing' END",
    "start_time": "{start}",
    "duration_s": "{billsec}",
    "service_type": "'call'",
}
ASTERISK_18 = Profile(
    name="asterisk_master_18",
    header=False,
    columns=_ASTERISK_18,
    mapping=_ASTERISK_MAPPING,
    time_expr=LOCAL_TIME,
    known_not_allowed=frozenset(_ASTERISK_18) - {"src", "dst", "start", "billsec"},
)
ASTERISK_21 = Profile(
    name="asterisk_master_21",
    header=False,
    columns=_ASTERISK_18 + ("peeraccount", "linkedid", "sequence"),
    mapping=_ASTERISK_MAPPING,
    time_expr=LOCAL_TIME,
    known_not_allowed=frozenset(_ASTERISK_18 + ("peeraccount", "linkedid", "sequence"))
    - {"src", "dst", "start", "billsec"},
)

_FREESWITCH = (
    "caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp", "answer_stamp",
    "end_stamp", "duration", "billsec", "hangup_cause", "uuid", "bleg_uuid", "accountcode", "read_codec",
    "write_codec",
)
FREESWITCH = Profile(
    name="freeswitch_cdr_csv",
    header=False,
    columns=_FREESWITCH,
    mapping={
        "origin_number": "{caller_id_number}",
        "destination_number": "{destination_number}",
        "direction": "CASE WHEN lower({context}) = 'public' THEN 'incoming' ELSE 'outgoing' END",
        "start_time": "{start_stamp}",
        "duration_s": "{billsec}",
        "service_type": "'call'",
    },
    time_expr=LOCAL_TIME,
    known_not_allowed=frozenset(_FREESWITCH)
    - {"caller_id_number", "destination_number", "start_stamp", "billsec"},
)

_MEDIATION = (
    "recordType", "servedMSISDN", "servedIMSI", "servedIMEI", "calledNumber", "redirectingNumber",
    "recordOpeningTime", "callDuration", "locationAreaCode", "cellIdentifier", "servingNodePLMNIdentifier",
    "terminatingPLMNIdentifier", "dataVolumeUplink", "dataVolumeDownlink", "accessPointName", "chargingID",
    "servedPDPAddress", "tariffClass", "chargedAmount", "discountAmount", "taxAmount", "currency",
)
MEDIATION = Profile(
    name="mediation_3gpp_csv",
    header=True,
    columns=_MEDIATION,
    mapping={
        "origin_number": "{servedMSISDN}",
        "destination_number": "{calledNumber}",
        "direction": "CASE upper({recordType}) WHEN 'MTC' THEN 'incoming' WHEN 'SMST' THEN 'incoming'"
                     " WHEN 'CFW' THEN 'forwarded' ELSE 'outgoing' END",
        "start_time": "{recordOpeningTime}",
        "duration_s": "{callDuration}",
        "service_type": "CASE upper({recordType}) WHEN 'MOC' THEN 'call' WHEN 'MTC' THEN 'call' WHEN 'CFW' THEN 'call'"
                        " WHEN 'SMSO' THEN 'sms' WHEN 'SMST' THEN 'sms' WHEN 'MMSO' THEN 'mms'"
                        " WHEN 'PGW' THEN 'data' WHEN 'SGW' THEN 'data' ELSE lower({recordType}) END",
        "redirection_number": "{redirectingNumber}",
        # Uplink + downlink; a non-numeric part leaves the raw text so validate rejects the row.
        "data_volume_bytes": "COALESCE(CAST(TRY_CAST({dataVolumeUplink} AS HUGEINT) + TRY_CAST({dataVolumeDownlink}"
                             " AS HUGEINT) AS VARCHAR), NULLIF(concat_ws('+', {dataVolumeUplink},"
                             " {dataVolumeDownlink}), ''))",
        "apn": "{accessPointName}",
        "cell_id": "{cellIdentifier}",
        "location_area": "{locationAreaCode}",
        "imsi": "{servedIMSI}",
        "imei": "{servedIMEI}",
        "origin_network": "{servingNodePLMNIdentifier}",
        "termination_network": "{terminatingPLMNIdentifier}",
        "service_area": "CASE WHEN {servingNodePLMNIdentifier} IS NULL THEN NULL"
                        " WHEN list_contains($home_plmns, {servingNodePLMNIdentifier}) THEN 'home' ELSE 'roaming' END",
        "tariff_code": "{tariffClass}",
        "charged_amount": "{chargedAmount}",
        "discount_amount": "{discountAmount}",
        "tax_amount": "{taxAmount}",
        "currency": "{currency}",
    },
    known_not_allowed=frozenset({"chargingID", "servedPDPAddress"}),
)

HEADER_PROFILES = (CANONICAL, MEDIATION)
HEADERLESS_PROFILES = (ASTERISK_18, ASTERISK_21, FREESWITCH)
ALL_PROFILES = {p.name: p for p in (*HEADER_PROFILES, *HEADERLESS_PROFILES, CANONICAL_PARQUET)}

_TIMESTAMP_LIKE = re.compile(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}[ T]\d{1,2}:\d{2}")


@dataclass(frozen=True)
class Detection:
    """What ingest learnt from the head of a file."""

    profile: Profile | None
    source_columns: tuple[str, ...]  # as named in the file (header) or by the profile
    reason: str = ""


def detect(head: bytes, *, is_parquet_columns: tuple[str, ...] | None = None, override: str | None = None) -> Detection:
    """Pick the profile from the first record of a file (header and shape).

    `head` is the first bytes of a text file; for Parquet pass its column names.
    """
    if is_parquet_columns is not None:
        names = is_parquet_columns
        if override and override != CANONICAL_PARQUET.name:
            return Detection(None, names, f"profile {override} cannot read Parquet")
        if sum(n in CANONICAL_COLUMNS for n in names) >= 3:
            return Detection(CANONICAL_PARQUET, names)
        return Detection(None, names, "parquet columns match no profile")
    first = first_record(head)
    if first is None:
        return Detection(None, (), "no complete first record")
    if override:
        prof = ALL_PROFILES.get(override)
        if prof is None:
            return Detection(None, (), f"unknown profile override {override}")
        return Detection(prof, tuple(first) if prof.header else prof.columns)
    names = tuple(n.strip() for n in first)
    if "servedMSISDN" in names:
        return Detection(MEDIATION, names)
    if sum(n in CANONICAL_COLUMNS for n in names) >= 3:
        return Detection(CANONICAL, names)
    for prof in HEADERLESS_PROFILES:
        if len(first) == len(prof.columns):
            start = first[prof.columns.index(prof.mapping["start_time"].strip("{}"))]
            if _TIMESTAMP_LIKE.match(start.strip()):
                return Detection(prof, prof.columns)
    return Detection(None, (), f"first record has {len(first)} fields and matches no profile")


def first_record(head: bytes) -> list[str] | None:
    """The first CSV record of `head`, or None when it is not complete in it."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if not text.strip():
        return None
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        return next(reader)
    except (StopIteration, csv.Error):
        return None


# ------------------------------------------------------------------------------- payments extract
# Not a CDR format: the billing system's payments / invoice-status extract, one row per invoice. It
# goes through transforms/steps/payments.py (invoices zone), never the CDR steps, so it has no Profile.
PAYMENTS_PROFILE = "payments"
PAYMENTS_COLUMNS = (
    "invoice_id", "account_id", "subscriber_number", "billing_period", "invoice_date", "due_date",
    "amount_due", "amount_paid", "paid_date", "status", "claim_type",
)
_PAYMENTS_NAME = re.compile(r"^payments_.*\.csv$", re.IGNORECASE)


def is_payments_header(head: bytes) -> bool:
    """True when the first record of `head` is exactly the payments header."""
    first = first_record(head)
    return first is not None and tuple(n.strip() for n in first) == PAYMENTS_COLUMNS


def is_payments_extract(head: bytes, file_name: str) -> bool:
    """A file for the payments step: its header says so (renamed files still work), or its name does.

    A payments-named file without the payments header goes there too, and that step refuses it:
    an extract that says it is payments but is not must not be read as CDRs.
    """
    return is_payments_header(head) or bool(_PAYMENTS_NAME.match(file_name))

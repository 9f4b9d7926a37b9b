"""The manifest of a generated night: the files written, their records and injected defects,
and the raw sensitive values they hold (so tests can prove none leaked)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date

# Defect kinds. Row kinds count injected rows; file kinds count 1 per file.
MALFORMED = ("too_few_fields", "too_many_fields", "unterminated_quote")        # records that do not parse
RULE_VIOLATIONS = ("email_as_origin", "negative_duration", "unknown_service_type", "bad_imsi",
                   "overlong_field")                                           # parse, break a suite rule
DUPLICATE_ROW = "duplicate_row"
FILE_DEFECTS = ("empty_file", "header_only", "invalid_utf8", "duplicate_file", "spreadsheet_resaved",
                "nul_byte", "hostile_column_name")
# Rows of the payments extract: a non-existent invoice date, an unknown status, no invoice id, and an
# invoice row delivered twice.
PAYMENT_DEFECTS = ("bad_payment_date", "bad_payment_status", "missing_invoice_id", "duplicate_invoice")
# Rows of the consent extract: a number that is none, a purpose and a channel the policy does not know, a
# time that is no time, one after the night, an event delivered twice, and a line cut short.
CONSENT_DEFECTS = ("bad_consent_number", "unknown_purpose", "unknown_channel", "bad_recorded_at",
                   "future_recorded_at", "duplicate_consent", "broken_consent_line")
ALL_DEFECT_KINDS = MALFORMED + RULE_VIOLATIONS + (DUPLICATE_ROW,) + FILE_DEFECTS + PAYMENT_DEFECTS + CONSENT_DEFECTS


@dataclass(frozen=True)
class FileManifest:
    """One landing file the generator wrote."""

    name: str
    profile: str | None          # format transforms.formats.recognize.detect should pick (None: none should)
    rows: int                    # data records written, header excluded (a malformed record counts 1)
    defects: dict[str, int] = field(default_factory=dict)  # kind -> injected rows (file-level kinds: 1)
    bytes: int = 0


@dataclass(frozen=True)
class NightManifest:
    """What one generated night holds: files, defects and raw sensitive values written."""

    night: date
    seed: int
    rows: int                         # requested N: records of the five main files (or the one export) add up to it
    subscribers: int                  # size of the subscriber population
    files: dict[str, FileManifest]    # file name -> what is in it
    msisdns: tuple[str, ...]          # served subscribers' MSISDNs, E.164 (a sample of up to 200)
    imsis: tuple[str, ...]            # valid IMSIs written (sample of up to 200)
    imeis: tuple[str, ...]            # IMEIs written (sample of up to 200)
    cell_ids: tuple[str, ...]         # home-network cell ids written (sample of up to 200)
    payment_msisdns: tuple[str, ...]  # subscriber numbers written in the payments extract (sample of up to 200)
    account_ids: tuple[str, ...]      # account ids written in the payments extract (sample of up to 200)
    caller_names: tuple[str, ...]     # personal names written (all, up to 5000)
    emails: tuple[str, ...]           # e-mail addresses written (all, up to 5000)
    ip_addresses: tuple[str, ...]     # IPv4 addresses written (all, up to 5000)

    @property
    def rows_total(self) -> int:
        """Data records over every file written (main files, copies and defect files)."""
        return sum(f.rows for f in self.files.values())

    def defect_count(self, kind: str) -> int:
        """Injected rows (or files) of one defect kind over the whole night."""
        return sum(f.defects.get(kind, 0) for f in self.files.values())

    def to_json(self) -> str:
        doc = asdict(self)
        doc["night"] = self.night.isoformat()
        return json.dumps(doc, indent=2, ensure_ascii=False)

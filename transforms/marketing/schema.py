"""The marketing zone's layout: one folder per event date, one file rebuilt whole, one row per subscriber.

    marketing/event_date=YYYY-MM-DD/part.parquet

The folder is the day the usage happened (as in billing and analytics), so a late file for an earlier day
rebuilds that day, and the retention sweep reads the day from the folder.
"""

from __future__ import annotations

from transforms.privacy.tokens import KEY_ID_COLUMN

ZONE = "marketing"
PARTITION = "event_date"
PROFILE_FILE = "part.parquet"
SUBSCRIBER_TOKEN = "subscriber_token"           # the profiled subscriber's marketing token
NAMED_PARTIES = "called_parties_consented"      # called parties who consented too: their marketing tokens
HOURS = 24

# Columns of a profile file, in order.
PROFILE_COLUMNS = (
    (SUBSCRIBER_TOKEN, "BLOB"), (KEY_ID_COLUMN, "VARCHAR"), ("events", "BIGINT"),
    ("voice_minutes", "DECIMAL(18,2)"), ("sms_count", "BIGINT"), ("mms_count", "BIGINT"),
    ("data_volume_bytes", "BIGINT"), ("events_by_hour", "BIGINT[]"), ("home_area", "VARCHAR"),
    (NAMED_PARTIES, "BLOB[]"), ("called_parties_other", "BIGINT"),
)

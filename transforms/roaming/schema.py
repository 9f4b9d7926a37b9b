"""The roaming zone's layout: monthly aggregates and window statuses, their columns in order."""

from __future__ import annotations

from transforms.privacy.tokens import KEY_ID_COLUMN

# Where the served subscriber's network is, by its MCC in the policy's reference table.
NETWORK_ZONES = ("home", "eu_eea", "rest_of_world")
# A subscriber's state over one window (docs/design.md §5).
STATES = ("flagged", "not_flagged", "insufficient_history")
MONTH_FILE = "part.parquet"          # roaming/month=YYYY-MM/part.parquet
STATUS_DIR = "status"                # roaming/status/as_of=YYYY-MM/part.parquet

# Columns of a month file, in order (the month is also in the folder name).
MONTH_COLUMNS = (
    ("subscriber_token", "BLOB"), (KEY_ID_COLUMN, "VARCHAR"), ("month", "VARCHAR"),
    ("days_home", "BIGINT"), ("days_eu_roaming", "BIGINT"), ("days_other_roaming", "BIGINT"),
    ("days_active", "BIGINT"), ("first_event_date", "DATE"), ("last_event_date", "DATE"),
    ("voice_out_min_home", "DECIMAL(18,2)"), ("voice_in_min_home", "DECIMAL(18,2)"),
    ("sms_out_home", "BIGINT"), ("data_bytes_home", "BIGINT"),
    ("voice_out_min_eu_roaming", "DECIMAL(18,2)"), ("voice_in_min_eu_roaming", "DECIMAL(18,2)"),
    ("sms_out_eu_roaming", "BIGINT"), ("data_bytes_eu_roaming", "BIGINT"),
)

# Columns of a window status file, in order; the audit store's view `roaming_status` reads them.
STATUS_COLUMNS = (
    ("as_of_month", "VARCHAR"), ("window_start_month", "VARCHAR"), ("window_months", "INTEGER"),
    (KEY_ID_COLUMN, "VARCHAR"), ("subscriber_token", "BLOB"), ("state", "VARCHAR"), ("first_month", "VARCHAR"),
    ("months_with_data", "BIGINT"), ("days_home", "BIGINT"), ("days_eu_roaming", "BIGINT"),
    ("days_other_roaming", "BIGINT"), ("days_active", "BIGINT"), ("voice_min_home", "DECIMAL(18,2)"),
    ("voice_min_eu_roaming", "DECIMAL(18,2)"), ("sms_out_home", "BIGINT"), ("sms_out_eu_roaming", "BIGINT"),
    ("data_bytes_home", "BIGINT"), ("data_bytes_eu_roaming", "BIGINT"), ("roaming_consumption_share", "DOUBLE"),
    ("presence_outweighs", "BOOLEAN"), ("consumption_outweighs", "BOOLEAN"),
    ("last_event_date", "DATE"),
    ("longest_inactive_days", "BIGINT"), ("long_inactivity", "BOOLEAN"),
)

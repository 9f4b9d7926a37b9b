-- Flagged subscribers by pseudonymous token (hex) with the figures behind the flag. Holds tokens: not exported to audit/parquet, not shown in the HTML report.
SELECT as_of_month, window_start_month, window_months, hmac_key_id,
       lower(hex(subscriber_token)) AS subscriber_token_hex, months_with_data, days_home, days_eu_roaming,
       days_other_roaming, days_active, roaming_consumption_share, voice_min_home, voice_min_eu_roaming,
       sms_out_home, sms_out_eu_roaming, data_bytes_home, data_bytes_eu_roaming, last_event_date,
       longest_inactive_days, long_inactivity
FROM roaming_status WHERE state = 'flagged'
ORDER BY as_of_month, hmac_key_id, subscriber_token_hex

"""The audit store, `LAKE/audit/audit.duckdb`: typed tables, the hash-chained log and its anchors, the
compliance views and their Parquet exports (docs/design.md §6). Values of personal data never go in."""

from transforms.audit_store.anchors import AnchorCheck
from transforms.audit_store.chain import (ChainCheck, LogEvent, StoreCheck, append_log, logged_change, outcome_event,
                                         verify_chain, verify_store)
from transforms.audit_store.store import (StoreBusy, StoreError, connect, insert, now_utc, reading, select, snapshot,
                                          writer_lock, writing)
from transforms.audit_store.writer_lease import WriterRefused, no_writing

__all__ = ["AnchorCheck", "ChainCheck", "LogEvent", "StoreBusy", "StoreCheck", "StoreError", "append_log", "connect",
           "insert", "logged_change", "now_utc", "outcome_event", "reading", "select", "snapshot", "verify_chain",
           "verify_store", "writer_lock", "writing", "WriterRefused", "no_writing"]

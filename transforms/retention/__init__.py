"""Retention (policy §5; docs/design.md §3): legal holds (`holds`), and the daily sweep (`sweep`) that
plans every row's due date (`catalog`, `rows`, `due`, `hold_scope`, `plan`), rewrites what is due
(`rewrite`, journaled in `journal`) and proves it gone (`proof`)."""

"""Privacy for further use (policy §3.3; docs/design.md §4): HMAC `keys` and keyed `tokens` over E.164
`numbers`, `generalize`d and pseudonymized `analytics`, k-anonymous `aggregates` released only through
`suppression`, and `redact`ion of names and messages that reach the audit. Finding one subject's rows across
key rotations is `transforms.subjects`."""

"""The consent register (policy §3.4): who consented to what, when, through which channel (docs/design.md §11)."""

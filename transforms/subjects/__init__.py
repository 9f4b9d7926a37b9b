"""Data subjects' rights (policy §6; docs/design.md §12): the register of requests, each with the last day to
answer it. The subject is kept only as its keyed tokens under every key held, never as its value."""

"""Benchmarks for cdr-audit: `python -m benchmarks.run --help`."""

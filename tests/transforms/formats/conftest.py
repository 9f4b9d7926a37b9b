"""Shared by the format tests: the built-in catalog, and detection from a head of bytes."""

from __future__ import annotations

import pytest

from transforms.formats import load_formats
from transforms.formats.recognize import detect


@pytest.fixture(scope="session")
def catalog(policy):
    return load_formats(policy)


@pytest.fixture(scope="session")
def sniff(catalog, policy):
    """detect() with the built-in formats and the real policy."""
    return lambda head, **kw: detect(head, catalog, policy, **kw)

"""Shared by the runs tests: the nightly tests' landing folder."""

from tests.transforms.nightly.conftest import landing  # noqa: F401  (a fixture)

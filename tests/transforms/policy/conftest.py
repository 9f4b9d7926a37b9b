"""Variants of the real policy file: the file as a dict, edited, written to tmp_path and loaded."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from transforms.bundled import DEFAULT_POLICY
from transforms.policy import Policy, PolicyError, load_policy


def real_doc() -> dict:
    """The real policy file as a plain dict."""
    return yaml.safe_load(DEFAULT_POLICY.read_bytes())


def dump(tmp_path: Path, doc: dict, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)      # libyaml's when there: a hundred variants
    path.write_text(yaml.dump(doc, Dumper=dumper, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def edited(doc: dict, edit: Callable[[dict], object]) -> dict:
    changed = copy.deepcopy(doc)
    edit(changed)
    return changed


def load_edited(tmp_path: Path, edit: Callable[[dict], object], doc: dict | None = None) -> Policy:
    """The real policy with `edit` applied, loaded (it must load)."""
    return load_policy(dump(tmp_path, edited(doc or real_doc(), edit)))


@pytest.fixture(scope="module")
def doc() -> dict:
    """The real policy file as a plain dict, to derive variants from."""
    return real_doc()


@pytest.fixture()
def load_variant(tmp_path, doc) -> Callable[[Callable[[dict], object]], PolicyError]:
    """Load the real policy with an edit that breaks it; returns the PolicyError raised."""
    def load(edit) -> PolicyError:
        with pytest.raises(PolicyError) as err:
            load_policy(dump(tmp_path, edited(doc, edit)))
        return err.value
    return load

"""transforms/policy/strict_yaml.py: a key given twice, a missing key or an unknown key is an error naming its
key path; values are read by type."""

from __future__ import annotations

import pytest

from transforms.policy import PolicyError
from transforms.policy.strict_yaml import Section, read_yaml


def read(tmp_path, text: str, what: str = "rule file"):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path, read_yaml(path, what)


def error(call) -> str:
    with pytest.raises(PolicyError) as err:
        call()
    return str(err.value)


# ---------------------------------------------------------------- read_yaml: duplicate keys

def test_read_yaml_returns_the_bytes_and_the_document(tmp_path):
    path, (raw, doc) = read(tmp_path, "a: 1\nb: [x, y]\n")
    assert raw == path.read_bytes()
    assert doc == {"a": 1, "b": ["x", "y"]}


@pytest.mark.parametrize("text, key, line", [
    ("a: 1\nb: 2\na: 3\n", "a", 3),                                     # top level
    ("s:\n  k: 1\n  j: 2\n  k: 1\n", "k", 4),                           # nested, same value twice
    ("items:\n  - x: 1\n  - x: 1\n    y: 2\n    x: 9\n", "x", 5),       # inside a list item
    ("m: {p: 1, p: 2}\n", "p", 1),                                      # flow mapping
])
def test_a_key_given_twice_is_refused_with_its_line(tmp_path, text, key, line):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    message = error(lambda: read_yaml(path, "rule file"))
    assert message.startswith(f"rule file {path}: not valid YAML at line {line}")
    assert f"key {key!r} given twice" in message


def test_the_same_key_in_different_mappings_is_fine(tmp_path):
    _, (_, doc) = read(tmp_path, "a: {k: 1}\nb: {k: 2}\nitems:\n  - k: 1\n  - k: 2\n")
    assert doc == {"a": {"k": 1}, "b": {"k": 2}, "items": [{"k": 1}, {"k": 2}]}


@pytest.mark.parametrize("text", ["? [a, b]\n: 1\n", "a: !!python/object/apply:os.system ['true']\n"],
                         ids=["unhashable_key", "python_object"])
def test_not_valid_yaml_names_the_file(tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    assert error(lambda: read_yaml(path, "rule file")).startswith(f"rule file {path}: not valid YAML")


def test_an_unreadable_file_names_what_it_is(tmp_path):
    missing = tmp_path / "none.yaml"
    message = error(lambda: read_yaml(missing, "rule file"))
    assert message == f"rule file {missing}: cannot read (No such file or directory)"


# ---------------------------------------------------------------- Section: key paths

DOC = {
    "operator": {"cc": "386", "n": 8, "plmns": ["29340"], "empty": None},
    "retention": [{"category": "a", "keep": "P1Y"}, {"category": "b"}],
    "shares": {"half": 0.5, "one": 1, "flag": True},
}


def test_key_paths_of_sections_and_list_items():
    top = Section(DOC, "")
    assert top.section("operator").key == "operator"
    items = top.items("retention")
    assert [i.key for i in items] == ["retention[0]", "retention[1]"]
    assert error(lambda: items[1].text("keep")) == "retention[1].keep: missing"
    assert error(lambda: top.section("operator").section("zone")) == "operator.zone: missing"
    assert error(lambda: top.section("nowhere").text("x")) == "nowhere: missing"


def test_a_null_value_is_missing():
    op = Section(DOC, "").section("operator")
    assert error(lambda: op.text("empty")) == "operator.empty: missing"
    assert op.text("empty", required=False) is None


def test_an_optional_section_may_be_absent():
    limits = Section(DOC, "").items("retention")[0].section("limitation_periods", required=False)
    assert limits.keys() == []
    assert limits.key == "retention[0].limitation_periods"


def test_a_section_must_be_a_mapping():
    assert error(lambda: Section(["x"], "operator")) == "operator: expected a mapping"
    assert error(lambda: Section("text", "", "rule file")) == "rule file: expected a mapping"
    assert error(lambda: Section(DOC, "").items("operator")) == "operator: expected a non-empty list"
    assert error(lambda: Section({"r": []}, "").items("r")) == "r: expected a non-empty list"
    assert error(lambda: Section({"r": [1]}, "").items("r")) == "r[0]: expected a mapping"


# ---------------------------------------------------------------- Section: unknown keys

def test_unknown_keys_are_those_never_read_listed_sorted():
    op = Section(DOC, "").section("operator")
    op.text("cc")
    op.integer("n", minimum=1)
    assert error(op.no_extra_keys) == "operator: unknown key(s): empty, plmns"
    op.text_list("plmns")
    op.text("empty", required=False)           # asked for, even though null: known
    op.no_extra_keys()


def test_unknown_keys_at_the_top_name_the_file():
    top = Section({"a": 1, "zz": 2}, "", "rule file")
    top.integer("a", minimum=0)
    assert error(top.no_extra_keys) == "rule file: unknown key(s): zz"


def test_keys_marks_every_key_read():
    s = Section({"consumer": "P1Y", "general": "P5Y"}, "limits")
    assert s.keys() == ["consumer", "general"]
    s.no_extra_keys()


# ---------------------------------------------------------------- Section: values by type

def test_text():
    op = Section(DOC, "").section("operator")
    assert op.text("cc", pattern=r"^\d{1,3}$") == "386"
    assert op.text("n") == "8"                           # an unquoted number is text where text is asked for
    assert error(lambda: op.text("cc", pattern=r"^\d{2}$")).startswith("operator.cc: '386' does not match")
    assert error(lambda: op.text("plmns")) == "operator.plmns: expected a non-empty string"


@pytest.mark.parametrize("value", ["", "   ", True, 1.5, {"a": 1}])
def test_text_refuses_empty_or_non_text(value):
    assert error(lambda: Section({"t": value}, "s").text("t")) == "s.t: expected a non-empty string"


def test_text_list():
    assert Section(DOC, "").section("operator").text_list("plmns", pattern=r"^\d{5,6}$") == ["29340"]
    s = Section({"l": ["29340", 29341], "e": [], "x": "29340", "p": ["29340", "2934"]}, "op")
    assert error(lambda: s.text_list("l")) == "op.l[1]: 29341 is not a valid value"
    assert error(lambda: s.text_list("e")) == "op.e: expected a non-empty list"
    assert error(lambda: s.text_list("x")) == "op.x: expected a non-empty list"
    assert error(lambda: s.text_list("p", pattern=r"^\d{5,6}$")) == "op.p[1]: '2934' is not a valid value"


@pytest.mark.parametrize("value", [3, "5", True, 4.0, None])
def test_integer_with_a_minimum(value):
    s = Section({"k": value}, "analytics")
    message = error(lambda: s.integer("k", minimum=4))
    assert message.startswith("analytics.k: ")


def test_integer_at_its_minimum():
    assert Section({"k": 4}, "a").integer("k", minimum=4) == 4


def test_integer_list():
    s = Section({"d": [7, 30], "bad": [7, "30"], "low": [0], "b": [True]}, "reporting")
    assert s.integer_list("d", minimum=1) == [7, 30]
    for key in ("bad", "low", "b"):
        assert error(lambda: s.integer_list(key, minimum=1)) == (
            f"reporting.{key}: expected a non-empty list of integers >= 1")


def test_share_from_low_up_to_not_including_high():
    s = Section(DOC, "").section("shares")
    assert s.share("half", 0.5, 1) == 0.5
    assert error(lambda: s.share("one", 0.5, 1)).startswith("shares.one: expected a number from 0.5 up to")
    assert error(lambda: s.share("flag", 0.5, 1)).startswith("shares.flag: ")


def test_choice():
    s = Section({"action": "delete", "bad": "shred"}, "retention[0]")
    assert s.choice("action", ("delete", "anonymize")) == "delete"
    assert error(lambda: s.choice("bad", ("delete", "anonymize"))) == (
        "retention[0].bad: 'shred' is not one of delete, anonymize")
    assert s.choice("absent", ("delete",), required=False) is None
    assert error(lambda: s.choice("absent", ("delete",))) == "retention[0].absent: missing"

"""transforms/formats/loader.py: every built-in loads; a broken format file is refused naming the file and
the key; a user's format beside the built-ins, or in place of one."""

from __future__ import annotations

import pytest
import yaml

from transforms.bundled import BUILTIN_FORMATS
from transforms.formats import FormatError, load_format, load_formats
from transforms.formats.model import CallingCode, Cases, Column, Constant, First, ImeiFromImeisv, PlmnArea, Sum

SEMICOLON_PBX = {  # the README's example: a PBX exporting semicolon-separated, headerless records
    "name": "pbx_semicolon", "title": "A PBX", "delimiter": ";", "header": False,
    "columns": ["acc", "tor", "tenant", "caller", "callee", "setup", "usage", "x3", "x2", "x1"],
    "timezone": "Europe/Berlin", "comment_prefix": "#",
    "recognize": {"field_count": 10, "patterns": {"setup": r"^\d{4}-\d{2}-\d{2} "}},
    "map": {"origin_number": "caller", "destination_number": "callee",
            "start_time": {"column": "setup", "time": "%Y-%m-%d %H:%M:%S"}, "duration_s": "usage",
            "service_type": {"constant": "call"}},
}


def write(tmp_path, doc, name="fmt.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_every_builtin_loads(policy):
    catalog = load_formats(policy)
    assert {"canonical_csv", "canonical_parquet", "asterisk_master_18", "asterisk_master_21", "freeswitch_cdr_csv",
            "mediation_3gpp_csv", "ts32298_ps", "ts32298_cs"} <= set(catalog.names)
    assert all(f.path.startswith(str(BUILTIN_FORMATS)) for f in catalog.formats)
    canonical = catalog.get("canonical_csv")
    assert [c for c, _ in canonical.map] == list(policy.allowed_columns)      # the policy's columns, in order
    assert canonical.derivation("start_time") == Column("start_time", time=("iso",))


def test_the_readme_example_loads_as_written(tmp_path, policy):
    fmt = load_format(write(tmp_path, SEMICOLON_PBX), policy)
    assert (fmt.delimiter, fmt.header, fmt.timezone, fmt.comment_prefix) == (";", False, "Europe/Berlin", "#")
    assert fmt.derivation("start_time") == Column("setup", time=("%Y-%m-%d %H:%M:%S",))
    assert fmt.derivation("service_type") == Constant("call")
    assert fmt.recognize.field_count == 10


def test_the_vocabulary_parses_into_its_types(policy):
    ps = load_format(BUILTIN_FORMATS / "ts32298_ps.yaml", policy)
    assert isinstance(ps.derivation("data_volume_bytes"), Sum)
    assert ps.derivation("imei") == ImeiFromImeisv(Column("servedIMEISV"))
    assert ps.derivation("service_area") == PlmnArea(Column("servingNodePLMNIdentifier"))
    assert ps.derivation("cell_id") == Column("cellIdentifier", hex=True)
    assert ps.derivation("origin_number") == Column("servedMSISDN", e164_digits=True)
    cs = load_format(BUILTIN_FORMATS / "ts32298_cs.yaml", policy)
    assert isinstance(cs.derivation("start_time"), First)
    direction = cs.derivation("direction")
    assert isinstance(direction, Cases) and isinstance(direction.default, Cases)   # forwarded, else by record type
    assert ps.derivation("origin_country_code") == CallingCode(Column("servedMSISDN", e164_digits=True))
    origin_code = cs.derivation("origin_country_code")
    assert origin_code.cases[0].then == CallingCode(Column("callingNumber", international_prefixes=("00",),
                                                           e164_digits=True))
    assert origin_code.default == CallingCode(Column("servedMSISDN", e164_digits=True))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(colour="blue"), "unknown key(s): colour"),
    (lambda d: d.pop("name"), "name: missing"),
    (lambda d: d.update(name="Bad Name"), "name: 'Bad Name' does not match"),
    (lambda d: d["map"].update(caller_name="caller"), "map: caller_name not on the policy's billing-data list"),
    (lambda d: d["map"].update(duration_s={"sum": ["usage"]}), "map.duration_s.sum: expected a list of at least two"),
    (lambda d: d["map"].update(duration_s={"column": "usage", "constant": "1"}), "exactly one of"),
    (lambda d: d["map"].update(duration_s={"column": "usage", "unit": "s"}), "unknown key(s): unit"),
    (lambda d: d["map"].update(origin_number="nobody"), "columns: nobody named in the format but not among its columns"),
    (lambda d: d.update(delimiter=";;"), "delimiter: one character"),
    (lambda d: d.update(timezone="Mars/Olympus"), "timezone: 'Mars/Olympus' is not"),
    (lambda d: d["recognize"].update(patterns={"setup": "("}), "recognize.patterns.setup: not a regular expression"),
    (lambda d: d.update(recognize={}), "recognize: needs"),
    (lambda d: d.pop("columns"), "columns: a format without a header names its columns by position"),
    (lambda d: d["map"].update(direction={"cases": "tor", "when": [{"match": "x"}]}), "give either value"),
    (lambda d: d["map"]["start_time"].update(time="yesterday"), "is not one of iso, ts32298, epoch"),
    (lambda d: d["map"].update(origin_country_code={"calling_code": {"column": "caller", "time": "iso"}}),
     "map.origin_country_code.calling_code: unknown key(s): time"),
    (lambda d: d["map"].update(origin_country_code={"calling_code": ["caller"]}),
     "map.origin_country_code.calling_code: a column name or {column: …}"),
    (lambda d: d["map"].update(origin_country_code={"calling_code": "caller", "part": "x"}), "unknown key(s): part"),
    (lambda d: d["map"].update(called_country_code={"calling_code": {"column": "callee",
                                                                     "international_prefixes": ["+"]}}),
     "map.called_country_code.calling_code.international_prefixes[0]: '+' is not a valid value"),
    (lambda d: d["map"].update(called_country_code={"calling_code": "nobody"}),
     "columns: nobody named in the format but not among its columns"),
    (lambda d: d["map"]["start_time"].update(time=["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %Q"]),
     "map.start_time.time: '%d.%m.%Y %Q' is not a strptime pattern the reader knows"
     " (Unrecognized format for strftime/strptime: %Q)"),
    (lambda d: d["map"].update(direction={"cases": "tor", "when": [{"match": True, "value": "incoming"}]}),
     "map.direction.when[0].match: a pattern or a list of patterns"),
    (lambda d: d["map"].update(direction={"cases": "tor", "when": [{"match": {"in": 1}, "value": "incoming"}]}),
     "map.direction.when[0].match: a pattern or a list of patterns"),
    (lambda d: d.update(quote="''"), "quote: one character, not the delimiter"),
    (lambda d: d.update(quote=";"), "quote: one character, not the delimiter"),
    # a column the map reads cannot also be declared off the list: it would be reported as both
    (lambda d: d.update(not_allowed=["acc", "caller"]), "not_allowed: caller read by the format's map"),
    (lambda d: d.update(answered={"column": "tor", "values": ["ANSWERED"]}, not_allowed=["tor"]),
     "not_allowed: tor read by the format's map or answered rule"),
])
def test_a_broken_format_names_the_file_and_the_key(tmp_path, policy, edit, message):
    doc = yaml.safe_load(yaml.safe_dump(SEMICOLON_PBX))
    edit(doc)
    path = write(tmp_path, doc)
    with pytest.raises(FormatError) as err:
        load_format(path, policy)
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_bare_number_is_a_pattern(tmp_path, policy):
    doc = yaml.safe_load(yaml.safe_dump(SEMICOLON_PBX))
    doc["map"]["direction"] = {"cases": "tor", "when": [{"match": 85, "value": "incoming"}], "default": "outgoing"}
    fmt = load_format(write(tmp_path, doc), policy)
    assert fmt.derivation("direction").cases[0].patterns == ("85",)


def test_a_key_given_twice_is_refused(tmp_path, policy):
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump(SEMICOLON_PBX, sort_keys=False) + "name: again\n")
    with pytest.raises(FormatError, match="given twice"):
        load_format(path, policy)


def test_a_users_folder_adds_formats_and_may_replace_a_builtin(tmp_path, policy, monkeypatch):
    write(tmp_path, SEMICOLON_PBX, "pbx.yaml")
    mine = yaml.safe_load((BUILTIN_FORMATS / "asterisk_master_18.yaml").read_text())
    mine["map"]["direction"]["when"][0]["match"] = ["ext-did*"]        # this deployment's inbound context
    write(tmp_path, mine, "asterisk.yaml")
    catalog = load_formats(policy, tmp_path)
    assert catalog.get("pbx_semicolon") is not None
    assert catalog.get("asterisk_master_18").path == str(tmp_path / "asterisk.yaml")
    assert catalog.names.count("asterisk_master_18") == 1
    monkeypatch.setenv("CDR_AUDIT_FORMATS_DIR", str(tmp_path))           # the same from the environment
    assert load_formats(policy).get("pbx_semicolon") is not None


def test_two_files_of_one_folder_with_one_name_are_refused(tmp_path, policy):
    write(tmp_path, SEMICOLON_PBX, "a.yaml")
    write(tmp_path, SEMICOLON_PBX, "b.yaml")
    with pytest.raises(FormatError, match="is also the name in"):
        load_formats(policy, tmp_path)


def test_a_missing_folder_is_refused(tmp_path, policy):
    with pytest.raises(FormatError, match="does not exist"):
        load_formats(policy, tmp_path / "nowhere")

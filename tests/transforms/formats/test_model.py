"""transforms/formats/model.py: which source columns a derivation keeps, and which it only reads."""

from __future__ import annotations

from transforms.formats.model import (CallingCode, Case, Cases, Column, Constant, First, ImeiFromImeisv, PlmnArea, Sum,
                                      deciding_columns, is_as_is, stored_columns)


def test_stored_and_deciding_columns():
    d = Cases("recordType", (Case(("mt*",), Column("callingNumber")),), First((Column("servedMSISDN"), Constant("x"))))
    assert stored_columns(d) == {"callingNumber", "servedMSISDN"} and deciding_columns(d) == {"recordType"}
    assert stored_columns(Sum((Column("u"), Column("d")))) == {"u", "d"}
    assert stored_columns(ImeiFromImeisv(Column("sv"))) == {"sv"} and stored_columns(PlmnArea(Column("p"))) == {"p"}
    assert stored_columns(CallingCode(Column("dst"))) == {"dst"}             # a part of the number is kept
    assert stored_columns(Constant("call")) == set() and deciding_columns(Column("a")) == set()


def test_as_is_means_the_value_unchanged():
    assert is_as_is(Column("src")) and is_as_is(Column("start", time=("iso",)))     # the same instant, in UTC
    assert not is_as_is(Column("src", e164_digits=True)) and not is_as_is(Constant("call"))

"""Shared by the step tests: hand-made landing records (the fixtures are in tests/transforms/conftest.py)."""

from __future__ import annotations

SECRET = "+38640777777"     # planted in records that must be rejected: may never appear in any output


def asterisk(src="040123456", dst="100", start="2026-11-22 10:00:00", billsec="60", dcontext="internal",
             userfield='""', clid='"""Ana Novak"" <040123456>"') -> bytes:
    """One Asterisk Master.csv record (18 columns: src is c1, start c9, billsec c13), quoted as the shared
    sample is."""
    return (f'"acc","{src}","{dst}","{dcontext}",{clid},"SIP/a-0001","SIP/b-0002","Dial","SIP/b,30",'
            f'"{start}","{start}","{start}",{int(billsec) + 5 if billsec.isdigit() else 0},{billsec},'
            f'"ANSWERED","DOCUMENTATION","1700000000.1",{userfield}\n').encode()

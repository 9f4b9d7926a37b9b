"""The raw sensitive values that reach the landing files (MSISDNs, IMSIs, IMEIs, cells, names,
e-mails, IPs, payments numbers and accounts), gathered for the manifest."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .events import Events, PbxCalls
from .reference import N_CELLS
from .subscribers import Cells, Population
from .vectorized import _pick

SAMPLE_IDS = 200                # identifiers (msisdn, imsi, imei, cell) kept in the manifest
SAMPLE_NOT_ALLOWED = 5_000      # names, e-mails, IPs kept in the manifest (all of them on small nights)


class Collector:
    """Raw sensitive values that reach the landing files (for the manifest)."""

    def __init__(self, pop: Population):
        self.pop = pop
        self.served = np.zeros(pop.size, dtype=bool)     # msisdn + imsi + imei written
        self.named = np.zeros(pop.size, dtype=bool)
        self.mailed = np.zeros(pop.size, dtype=bool)
        self.cells = np.zeros(N_CELLS, dtype=bool)
        self.names: dict[str, None] = {}
        self.emails: dict[str, None] = {}
        self.ips: dict[str, None] = {}
        self.payment_msisdns: tuple[str, ...] = ()
        self.account_ids: tuple[str, ...] = ()

    def payments(self, numbers: pa.Array, accounts: pa.Array) -> None:
        self.payment_msisdns = tuple(pc.unique(numbers).slice(0, SAMPLE_IDS).to_pylist())
        self.account_ids = tuple(pc.unique(accounts).slice(0, SAMPLE_IDS).to_pylist())

    def events(self, ev: Events, *, names: bool = False, emails: bool = False, ips: np.ndarray | None = None) -> None:
        self.served[ev.sub] = True
        self.cells[ev.cell[~ev.roaming]] = True
        if names:
            self.named[ev.sub] = True
        if emails:
            self.mailed[ev.sub] = True
        if ips is not None:
            self.ip_values(ev.ip.filter(pa.array(ips)))

    def ip_values(self, arr: pa.Array | list[str]) -> None:
        room = SAMPLE_NOT_ALLOWED - len(self.ips)
        if room <= 0:
            return
        values = arr.slice(0, 2 * room).to_pylist() if isinstance(arr, pa.Array) else arr
        for v in values:
            if v and len(self.ips) < SAMPLE_NOT_ALLOWED:
                self.ips[v] = None

    def add(self, names: Sequence[str] = (), emails: Sequence[str] = (), ips: Sequence[str] = ()) -> None:
        for v in names:
            self.names.setdefault(v, None)
        for v in emails:
            self.emails.setdefault(v, None)
        self.ip_values([v for v in ips if v])

    def sample_rows(self, ev: Events, raw: list[list[str]], ci: dict[str, int], used: range,
                    ip_col: str | None) -> None:
        """Register the sensitive values of sample rows that were written."""
        subs = ev.sub[list(used)]
        self.served[subs] = True
        self.cells[ev.cell[list(used)][~ev.roaming[list(used)]]] = True
        for i in used:
            row = raw[i]
            if "caller_name" in ci:
                self.add(names=[row[ci["caller_name"]]], emails=[row[ci["email"]]])
            if ip_col:
                self.add(ips=[row[ci[ip_col]]])

    def pbx_calls(self, calls: PbxCalls) -> None:
        self.named[np.where(calls.outgoing, calls.sub, calls.caller_sub)] = True

    def result(self, cells: Cells) -> dict[str, tuple[str, ...]]:
        pop = self.pop

        def take(arr: pa.Array, mask: np.ndarray, cap: int) -> list[str]:
            return list(dict.fromkeys(_pick(arr, np.flatnonzero(mask)).to_pylist()))[:cap]

        served = np.flatnonzero(self.served)[:SAMPLE_IDS]
        names = list(dict.fromkeys(take(pop.name, self.named, SAMPLE_NOT_ALLOWED) + list(self.names)))
        emails = list(dict.fromkeys(take(pop.email, self.mailed, SAMPLE_NOT_ALLOWED) + list(self.emails)))
        return dict(
            msisdns=tuple(_pick(pop.msisdn, served).to_pylist()),
            imsis=tuple(_pick(pop.imsi, served).to_pylist()),
            imeis=tuple(_pick(pop.imei, served).to_pylist()),
            cell_ids=tuple(_pick(cells.cell_id, np.flatnonzero(self.cells)[:SAMPLE_IDS]).to_pylist()),
            payment_msisdns=self.payment_msisdns,
            account_ids=self.account_ids,
            caller_names=tuple(names[:SAMPLE_NOT_ALLOWED]),
            emails=tuple(emails[:SAMPLE_NOT_ALLOWED]),
            ip_addresses=tuple(self.ips),
        )

"""Reference data: the operator, its subscribers' names, numbering, handsets, tariffs, the
countries and networks they call and roam in, traffic shape, prices and invoicing rules.

Plain constants and tables; nothing here imports the rest of the generator.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

DEFAULT_NIGHT = date(2026, 11, 22)
LOCAL_TZ = "Europe/Ljubljana"   # policy operator.local_timezone: PBX/mediation clocks
N_CELLS = 6_000                 # the home network's cells, fixed so subscribers keep their home cell

FIRST_NAMES = (
    "Franc", "Janez", "Marko", "Andrej", "Ivan", "Anton", "Luka", "Matej", "Peter", "Jožef", "Tomaž", "Aleš",
    "Žiga", "Nejc", "Jan", "Rok", "Miha", "Gregor", "Jure", "Blaž", "Primož", "Boštjan", "Matjaž", "Uroš",
    "Marija", "Ana", "Maja", "Irena", "Mojca", "Nina", "Eva", "Mateja", "Nataša", "Barbara", "Petra",
    "Andreja", "Tjaša", "Urška", "Špela", "Katja", "Sara", "Lara", "Nika", "Živa", "Jožica", "Polona",
    "Alenka", "Darja",
)
SURNAMES = (
    "Novak", "Horvat", "Kovačič", "Krajnc", "Zupančič", "Potočnik", "Kovač", "Mlakar", "Kos", "Vidmar",
    "Golob", "Turk", "Božič", "Kralj", "Korošec", "Zupan", "Bizjak", "Hribar", "Kotnik", "Kavčič", "Rozman",
    "Kastelic", "Oblak", "Petek", "Žagar", "Hočevar", "Kolar", "Košir", "Koren", "Klemenčič", "Zajc",
    "Knez", "Medved", "Zorko", "Šinkovec", "Pirc", "Jerman", "Furlan", "Petrič", "Kuhar", "Pavlič",
    "Majcen", "Dolenc", "Jereb", "Vovk", "Uršič", "Tomažič", "Lesjak", "Leban", "Babič", "Sever",
    "Breznik", "Hren", "Bogataj", "Čeh", "Šuštar", "Černe", "Jurić", "Ferjančič", "Debeljak",
)
MAIL_DOMAINS = ("gmail.com", "siol.net", "t-2.net", "amis.net", "gmail.com", "outlook.com", "yahoo.com",
                "guest.arnes.si", "a1.net", "gmail.com")

# Mobile prefixes after +386 (number portability mixes operators; weights lean to A1 ranges).
MOBILE_PREFIXES = np.array([40, 41, 31, 51, 70, 68, 69, 64, 65])
MOBILE_WEIGHTS = np.array([30, 14, 10, 6, 6, 14, 12, 4, 4], dtype=float)
PREFIX_NETWORK = {40: "29340", 68: "29340", 69: "29340", 41: "29341", 31: "29341", 51: "29341",
                  65: "29341", 70: "29370", 64: "29364"}
LANDLINE_AREAS = np.array([1, 2, 3, 4, 5, 7])
LANDLINE_WEIGHTS = np.array([40, 20, 12, 12, 10, 6], dtype=float)
# Real type allocation codes (first 8 IMEI digits), common handsets.
TACS = np.array([35332811, 35391110, 35467811, 35290611, 35846111, 86769705, 35684610, 35925406,
                 86143804, 35209214, 35456111, 35174913, 35407115, 35873210, 35102011, 86891504])
TARIFFS = ("A1_GO_S", "A1_GO_M", "A1_GO_L", "A1_GO_XL", "PREPAID_START", "PREPAID_PLUS", "A1_BIZ_M")
TARIFF_WEIGHTS = np.array([10, 30, 20, 8, 15, 7, 10], dtype=float)
PREPAID = np.array([t.startswith("PREPAID") for t in TARIFFS])
BUSINESS = np.array([t.startswith("A1_BIZ") for t in TARIFFS])
ROAM_TARIFF = {True: "ROAM_EU", False: "ROAM_WORLD_Z2"}
HOME_PLMN = "29340"

# country: ISO, calling code, national number length, EU/EEA, weight as roaming destination,
# weight as called country, its networks (MCC-MNC; the first is the most used)
COUNTRIES = (
    ("DE", 49, 10, True, 14, 18, ("26201", "26202", "26203")),
    ("AT", 43, 10, True, 16, 14, ("23201", "23203", "23205")),
    ("IT", 39, 10, True, 14, 12, ("22201", "22210", "22288")),
    ("HR", 385, 9, True, 22, 20, ("21910", "21901", "21902")),
    ("FR", 33, 9, True, 5, 4, ("20801", "20810")),
    ("ES", 34, 9, True, 5, 3, ("21401", "21407")),
    ("PL", 48, 9, True, 2, 2, ("26001", "26002")),
    ("IE", 353, 9, True, 1, 1, ("27201",)),
    ("NO", 47, 8, True, 1, 1, ("24201",)),
    ("NL", 31, 9, True, 2, 2, ("20404", "20408")),
    ("GR", 30, 10, True, 3, 1, ("20201",)),
    ("HU", 36, 9, True, 3, 3, ("21630", "21670")),
    ("CZ", 420, 9, True, 2, 2, ("23003",)),
    ("CH", 41, 9, False, 3, 3, ("22801", "22802")),
    ("GB", 44, 10, False, 2, 3, ("23415", "23410")),
    ("US", 1, 10, False, 1, 2, ("310260",)),
    ("RS", 381, 9, False, 3, 6, ("22003", "22001")),
    ("TR", 90, 10, False, 2, 1, ("28601",)),
    ("BA", 387, 8, False, 3, 6, ("21890", "21803")),
)
# PLMN table: index 0 is home; then the other Slovenian networks; then foreign ones.
PLMNS = [HOME_PLMN, "29341", "29370", "29364"] + [p for c in COUNTRIES for p in c[6]]
PLMN_INDEX = {p: i for i, p in enumerate(PLMNS)}
PLMN_EU = np.array([True] * 4 + [c[3] for c in COUNTRIES for _ in c[6]])
C_CC = np.array([c[1] for c in COUNTRIES], dtype=np.int64)
C_LEN = np.array([c[2] for c in COUNTRIES], dtype=np.int64)
C_ROAM_W = np.array([c[4] for c in COUNTRIES], dtype=float)
C_CALL_W = np.array([c[5] for c in COUNTRIES], dtype=float)
C_EU = np.array([c[3] for c in COUNTRIES])
COUNTRY_INDEX = {c[0]: i for i, c in enumerate(COUNTRIES)}
C_FIRST_PLMN = np.array([PLMN_INDEX[c[6][0]] for c in COUNTRIES])
C_PLMN_COUNT = np.array([len(c[6]) for c in COUNTRIES])
C_PLMN_MATRIX = np.array([[PLMN_INDEX[c[6][min(k, len(c[6]) - 1)]] for k in range(3)] for c in COUNTRIES])
NO_NET = len(PLMNS)             # "no network" index: renders as an empty field
PLMN_STR = pa.array(PLMNS + [""])

# Hour-of-day traffic weights (local time).
HOUR_WEIGHTS = np.array([1.2, 0.7, 0.4, 0.3, 0.3, 0.6, 1.5, 3.5, 5.5, 6.5, 6.8, 6.6, 6.2, 6.0, 6.1, 6.3,
                         6.6, 6.9, 6.7, 6.0, 5.2, 4.3, 3.1, 2.0])
DATA_APNS = pa.array(["internet", "internet.a1.si", "internet.a1.si", "internet", "ims", "business.a1.si"])
PURCHASE_CODES = pa.array(["1919", "3030", "1300", "4646", "1717"])
PURCHASE_PRICES_E4 = np.array([9900, 19900, 29900, 49900, 99900, 199900])

# Event kinds (shared by the mediation and canonical generators).
MOC, MTC, SMSO, SMST, MMSO, PGW, CFW, MMST, PURCHASE = range(9)
RECORD_TYPE = pa.array(["MOC", "MTC", "SMSO", "SMST", "MMSO", "PGW", "CFW", "MMST", "PURCHASE"])
SERVICE_TYPE = pa.array(["call", "call", "sms", "sms", "mms", "data", "call", "mms", "purchase"])
DIRECTION = pa.array(["outgoing", "incoming", "outgoing", "incoming", "outgoing", "outgoing", "forwarded",
                      "incoming", "outgoing"])
INCOMING_KIND = np.array([False, True, False, True, False, False, True, True, False])
MEDIATION_MIX = np.array([30, 25, 10, 8, 1, 24, 2, 0, 0], dtype=float)
CANONICAL_MIX = np.array([24, 17, 13, 9, 2, 22, 2, 1, 10], dtype=float)

# Prices (EUR, net of VAT): per minute / message / MB, as 1e-6 EUR.
PRICE_E6 = {"call": 99_000, "call_prepaid": 119_000, "call_intl": 490_000, "call_world": 1_490_000,
            "sms": 69_000, "sms_prepaid": 79_000, "sms_world": 490_000, "mms": 290_000,
            "mb": 5_000, "mb_world": 9_900}
VAT_PERCENT = 22

# Invoices (payments extract): monthly fee per tariff, EUR cents net of VAT (prepaid has no invoice).
MONTHLY_FEE_CENTS = np.array([999, 1999, 2999, 3999, 0, 0, 2499])
INVOICE_MONTHS = 3              # the extract of night N lists the 3 billing periods before N's month
INVOICE_DAY = 3                 # invoices are issued on the 3rd of the month after the period
DUE_DAYS = 15
BUSINESS_ACCOUNT_BLOCK = 16     # business subscribers i // 16 share an account (a company with several lines)
# An invoice's fate, fixed per (subscriber, period) so consecutive extracts agree: paid (on a day after
# the invoice), partially paid, disputed, or never paid. As of a night, a fate not reached yet shows "open".
PAID, PARTIAL, DISPUTED, UNPAID = range(4)
FATE_SHARES = np.array([90, 4, 3, 3], dtype=float)

# The packet-switched export (formats/ts32298_ps.yaml): data sessions only, written by the gateways below.
# nodeID, P-GW (else S-GW), clock on UTC (its TimeStamps end +0000; the others carry the local offset),
# record type written as its ASN.1 number (85 P-GW, 84 S-GW) instead of its name, share of sessions.
PS_MIX = np.where(np.arange(len(RECORD_TYPE)) == PGW, 1.0, 0.0)
PS_NODES = (
    ("LJPGW01", True, False, False, 30),
    ("LJPGW02", True, False, False, 24),
    ("MBPGW01", True, True, False, 12),
    ("KPPGW01", True, False, True, 3),
    ("LJSGW01", False, False, False, 16),
    ("MBSGW01", False, True, False, 13),
    ("KPSGW01", False, False, True, 2),
)
PS_NODE_ID = pa.array([n[0] for n in PS_NODES])
PS_NODE_UTC = np.array([n[2] for n in PS_NODES])
PS_NODE_WEIGHTS = np.array([n[4] for n in PS_NODES], dtype=float)
# Abroad, the visited network's S-GW serves the session: its records go to that network; ours come from
# our own P-GWs (home-routed roaming).
PS_ROAMING_NODE_WEIGHTS = np.where([n[1] for n in PS_NODES], PS_NODE_WEIGHTS, 0.0)
PS_RECORD_TYPE = pa.array([("85" if n[1] else "84") if n[3] else ("pGWRecord" if n[1] else "sGWRecord")
                           for n in PS_NODES])
# rATType: 6 E-UTRAN, 10 NR, 1 UTRAN.
PS_RAT_TYPES = np.array([6, 10, 1])
PS_RAT_WEIGHTS = np.array([80, 12, 8], dtype=float)
# causeForRecClosing of a session's last record: normalRelease 0, abnormalRelease 4, managementIntervention 20.
PS_CLOSING_CAUSES = np.array([0, 4, 20])
PS_CLOSING_WEIGHTS = np.array([96, 3, 1], dtype=float)

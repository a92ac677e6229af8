"""Dates as report pages write them -> ISO YYYY-MM-DD, or None when unparseable.

Mirrors and NGOs publish in their own language: "3. März 2021", "3 mars 2021",
"3 de marzo de 2021", "03.03.2021" are read as well as "March 3, 2021".
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

# Full month names in the languages of the sites we read, accents removed (see _fold).
_MONTH_NAMES = (
    ("january", "januar", "janner", "janvier", "enero", "janeiro", "gennaio", "januari"),
    ("february", "februar", "fevrier", "febrero", "fevereiro", "febbraio", "februari"),
    ("march", "marz", "maerz", "mars", "marzo", "marco", "maart"),
    ("april", "avril", "abril", "aprile"),
    ("may", "mai", "mayo", "maio", "maggio", "mei"),
    ("june", "juni", "juin", "junio", "junho", "giugno"),
    ("july", "juli", "juillet", "julio", "julho", "luglio"),
    ("august", "aout", "agosto", "augustus"),
    ("september", "septembre", "septiembre", "setembro", "settembre"),
    ("october", "oktober", "octobre", "octubre", "outubro", "ottobre"),
    ("november", "novembre", "noviembre", "novembro"),
    ("december", "dezember", "decembre", "diciembre", "dezembro", "dicembre"),
)
_MONTHS = {name: number for number, names in enumerate(_MONTH_NAMES, start=1) for name in names}
# English and German abbreviations ("Sept. 5, 2019", "5. Okt. 2020").
_MONTHS.update({names[0][:3]: number for number, names in enumerate(_MONTH_NAMES, start=1)})
_MONTHS.update({"sept": 9, "okt": 10, "dez": 12, "mrz": 3})
_MONTH = r"(?P<month>[^\W\d_]{3,10})\.?"
_PATTERNS = (
    re.compile(r"\b(?P<year>\d{4})-(?P<mnum>\d{1,2})-(?P<day>\d{1,2})(?!\d)"),
    # "3 July 2021", "3. Juli 2021", "1er mars 2021", "3 de marzo de 2021".
    re.compile(rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th|er|\.)?\s+(?:de\s+)?{_MONTH},?\s+(?:de\s+)?"
               r"(?P<year>\d{4})\b"),
    re.compile(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})\b"),
    re.compile(r"\b(?P<year>\d{4})/(?P<mnum>\d{1,2})/(?P<day>\d{1,2})\b"),
    # Day first with dots, as written across Europe: "03.03.2021".
    re.compile(r"(?<![\d.])(?P<day>\d{1,2})\.(?P<mnum>\d{1,2})\.(?P<year>\d{4})(?![\d.])"),
)


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word.lower())
                   if not unicodedata.combining(c))


def parse_date(text: str | None) -> str | None:
    """First real calendar date in the text; '31 June' or '2019-13-01' give None."""
    if not text:
        return None
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            parts = match.groupdict()
            month = int(parts["mnum"]) if parts.get("mnum") else _MONTHS.get(_fold(parts["month"]))
            if month is None:
                continue
            try:
                return date(int(parts["year"]), month, int(parts["day"])).isoformat()
            except ValueError:
                continue
    return None

"""Which country a page is about: what the site names, else the page's own words.

The rule, in order: a country the site parser found (a "Country:" label, the
headline of a country chapter, a title part); else the one country the title
names ("Nepal Country Profile 2016", "US upgrades Ghana to Tier 1"); else the one
the first heading names; else the one the lead paragraph names. A page whose
headings are several countries is a list (a field listing, an interim assessment)
and is about none of them; so is a title naming several.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from . import countries
from .content import Block
from .countries import Country

_MIN_LEAD = 60
# More lines than this that are only a country name make a list of countries.
_MAX_COUNTRY_LINES = 2
_URL_WORD = re.compile(r"[/_.\-]+")
# "U.S. Embassy in Ghana", "Embassy of Nepal", "the Ghana Embassy", "Permanent Mission of Fiji to",
# "the United States Department of State": who speaks or publishes, not what the page is about.
_MISSION = re.compile(r"(?:\b[A-Z][\w.]*(?:\s+[A-Z][\w.]*)?\s+)?"
                      r"(?:Embassy|Consulate(?:\s+General)?|High\s+Commission|(?:Permanent\s+)?Mission)\b"
                      r"(?:\s+(?:of|in|to)\s+(?:the\s+)?[A-Z][\w'\u2019.-]*(?:\s+[A-Z][\w'\u2019.-]*){0,2})?"
                      r"|\bUnited\s+States(?:\s+of\s+America)?(?:['\u2019]s?)?\s+(?=(?:Department|State\s+Department|"
                      r"[Gg]overnment|Congress|Secretary|Ambassador|Embassy)\b)")
_PARENTHETICAL = re.compile(r"\s*\([^)]*\)\s*$")


def subject_country(named: list[str], title: str | None, blocks: list[Block], url: str = "") -> Country | None:
    for name in named:
        if country := countries.lookup(name):
            return country
    if _lists_countries(blocks):
        return None
    heading = next((b.text for b in blocks if b.heading), None)
    lead = next((b.text for b in blocks if not b.heading and len(b.text) >= _MIN_LEAD), None)
    for text in (title, heading, lead):
        mentioned = _mentioned(text) if text else []
        if len(mentioned) == 1:
            return mentioned[0]
        if len(mentioned) > 1:
            # A lead naming several ("In Indonesia, fishers on vessels flagged in Taiwan and
            # China") is about the one the page's address names too.
            in_url = [c for c in mentioned if c.iso2 in _url_countries(url)] if text is lead else []
            return in_url[0] if len(in_url) == 1 else None
    return None


def _url_countries(url: str) -> set[str]:
    words = _URL_WORD.split(urlsplit(url).path)
    return {c.iso2 for c in countries.find_in_text(" ".join(w[:1].upper() + w[1:] for w in words if w))}


def _mentioned(text: str) -> list[Country]:
    """Countries a title or heading names; a whole line that is a name counts in any case
    ("GHANA (Tier 1)"), running text only in proper case (so "chad" or "turkey" do not).
    An embassy's or mission's country is who speaks, not what the page is about."""
    if whole := countries.lookup(_PARENTHETICAL.sub("", text)):
        return [whole]
    return countries.find_in_text(_MISSION.sub(" ", text))


def _lists_countries(blocks: list[Block]) -> bool:
    """Two or more headings that are each just a country name ("Angola (Tier 2 Watch List)"),
    or three or more lines that are (the rows of a table of placements)."""
    headings: set[str] = set()
    lines: set[str] = set()
    for block in blocks:
        if country := countries.lookup(_PARENTHETICAL.sub("", block.text)):
            (headings if block.heading else lines).add(country.iso2)
            if len(headings) > 1 or len(lines) > _MAX_COUNTRY_LINES:
                return True
    return False

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

from . import countries
from .content import Block
from .countries import Country

_MIN_LEAD = 60
_PARENTHETICAL = re.compile(r"\s*\([^)]*\)\s*$")


def subject_country(named: list[str], title: str | None, blocks: list[Block]) -> Country | None:
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
            return None
    return None


def _mentioned(text: str) -> list[Country]:
    """Countries a title or heading names; a whole line that is a name counts in any case
    ("GHANA (Tier 1)"), running text only in proper case (so "chad" or "turkey" do not)."""
    if whole := countries.lookup(_PARENTHETICAL.sub("", text)):
        return [whole]
    return countries.find_in_text(text)


def _lists_countries(blocks: list[Block]) -> bool:
    """Two or more headings that are each just a country name ("Angola (Tier 2 Watch List)")."""
    seen: set[str] = set()
    for block in blocks:
        if block.heading and (country := countries.lookup(_PARENTHETICAL.sub("", block.text))):
            seen.add(country.iso2)
            if len(seen) > 1:
                return True
    return False

"""Tier, series and year as news, embassies, governments and NGOs write them in sentences.

"The 2023 Trafficking in Persons Report placed the Philippines on Tier 1", "Ghana was
upgraded to Tier 2", "Taiwan retained its Tier 1 ranking", "Nigeria remained on Tier 2
and Mali was downgraded to Tier 3". A tier belongs to the country the clause names
before it (the one placed), never to another country in the same sentence; a tier
after "from" is where the country was, and a clause that only imagines a placement
("would otherwise have been downgraded to Tier 3") places nobody.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import countries, facets
from .content import Block
from .countries import Country
from .facets import TIER_VALUE, sentences, tier_name

_TIER = re.compile(TIER_VALUE, re.I)
# The verbs a placement is written with, in the tenses news use.
_PLACING = re.compile(
    r"\b(?:plac|rank|rat|upgrad|downgrad|mov|elevat|demot|list|classif|return|restor|promot|improv|climb|"
    r"slipp|slid|jump)\w*"
    r"|\b(?:kept|keeps?|remain\w*|stay\w*|retain\w*|maintain\w*|put|puts|dropped|fell|rose|is|was|are|were)\b",
    re.I)
_HYPOTHETICAL = re.compile(r"\b(?:would|could|otherwise|waiver|unless|if|risks?|faces?|may|might|should)\b", re.I)
# "The country was downgraded to Tier 3": the page's own country, when the page has one.
_THE_COUNTRY = re.compile(r"\bthe\s+country\b", re.I)
# Where one placement ends and the next begins inside a sentence.
_CLAUSE = re.compile(r";|,\s*(?:while|whereas|but|and)\b|\s(?:while|whereas)\s|\.\s")
_FROM = re.compile(r"\bfrom\s+(?:the\s+)?$", re.I)
# What a report does in a sentence that names it as the subject.
_REPORTING = re.compile(
    r"\s*,?\s*(?:ranked|ranks|placed|places|rated|rates|released|published|issued|found|finds|said|says|"
    r"noted|notes|downgraded|downgrades|upgraded|upgrades|kept|keeps|listed|lists|credited|credits|"
    r"recogni[sz]ed|recogni[sz]es|highlighted|highlights|critici[sz]ed|assessed|assesses|moved|put|puts)\b",
    re.I)
# Series names in a report page's lead are the page's series; later ones are references.
_LEAD_BLOCKS = 3


def placements(lines: Iterable[str]) -> list[tuple[str, Country | None]]:
    """(tier, country) for every placement written as a sentence, in order; the country is
    None where the sentence says "the country"."""
    found: list[tuple[str, Country | None]] = []
    for line in lines:
        if not _TIER.search(line):
            continue
        for sentence in sentences(line):
            found.extend(_placed(sentence))
    return found


def _placed(sentence: str) -> list[tuple[str, Country | None]]:
    out: list[tuple[str, Country | None]] = []
    named = countries.mentions(sentence)
    for match in _TIER.finditer(sentence):
        before = sentence[:match.start()]
        if _FROM.search(before):
            continue
        start = max((m.end() for m in _CLAUSE.finditer(before)), default=0)
        clause = before[start:]
        if not _PLACING.search(clause) or _HYPOTHETICAL.search(clause):
            continue
        placed = [country for end, country in named if start <= end <= match.start()]
        if placed:
            out.append((tier_name(match.group("tier")), placed[-1]))
        elif _THE_COUNTRY.search(clause):
            out.append((tier_name(match.group("tier")), None))
    return out


def tier_for(lines: list[str], subject: Country | None) -> str | None:
    """The labelled tier (facets.tier_for) when the page labels one, else the tier a
    sentence places the subject country on."""
    if subject is None:
        return None
    if facets.tier_statements(lines):
        return facets.tier_for(lines, subject)
    return next((tier for tier, country in placements(lines)
                 if country is None or country.iso2 == subject.iso2), None)


def series_lines(blocks: list[Block]) -> list[str]:
    """Sentences of the lead (an eyebrow, the first paragraphs) that name the page's report:
    with its year ("the State Department's 2021 Trafficking in Persons Report", "The State of
    the World's Human Rights 2022/23") or as what acts ("the annual TIP report ranked Ghana").
    A source cited in passing ("a tier rating from the annual Trafficking in Persons
    Report") is not what the page is."""
    out = []
    for block in blocks[:_LEAD_BLOCKS]:
        for sentence in sentences(block.text):
            if any(facets.year_near(sentence, m) or _REPORTING.match(sentence, m.end())
                   for m in facets.series_matches(sentence)):
                out.append(sentence)
    return out
